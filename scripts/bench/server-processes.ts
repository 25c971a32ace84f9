import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type pg from 'pg';
import { readProcStat } from './proc-stat.js';

/**
 * Finds the local processes of the PostgreSQL server and the RabbitMQ node a scenario uses, so their CPU can
 * be read from /proc. Each finder returns undefined when the server is not on this host or its processes
 * cannot be found or read.
 */
export function isLocalHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === '' || host === 'localhost' || host.startsWith('127.') || host === '::1') return true;
  return Object.values(networkInterfaces()).some((addresses) =>
    (addresses ?? []).some((address) => address.address === host),
  );
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    // A kernel without the children file: find them by parent pid.
    return allPids().filter((child) => readProcStat(child)?.ppid === pid);
  }
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

function processTitle(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    // Exited meanwhile: it has no title, and no CPU left to read either.
    return '';
  }
}

/** A backend's title: `postgres: [cluster: ]user database host(port) state`, or `[local]` for a socket. */
const CLIENT_BACKEND = /\(\d+\)|\[local\]/;

/**
 * The PostgreSQL processes that work for `database`: the postmaster, its background processes (WAL writer,
 * checkpointer, …) and the backends connected to this database; backends of other databases on a shared
 * server are left out. The postmaster is found as the parent of the pool's own backend (`pg_backend_pid()`).
 */
export async function postgresProcesses(
  sql: pg.Pool,
  databaseUrl: string,
): Promise<(() => number[]) | undefined> {
  const url = new URL(databaseUrl);
  const socketHost = url.searchParams.get('host');
  if (!(socketHost?.startsWith('/') ?? false) && !isLocalHost(url.hostname)) return undefined;
  const database = decodeURIComponent(url.pathname.slice(1));
  const result = await sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const backend = readProcStat(result.rows[0]?.pid ?? 0);
  const postmaster = backend && readProcStat(backend.ppid);
  if (backend?.comm !== 'postgres' || postmaster?.comm !== 'postgres') return undefined;
  const titles = new Map<number, string>();
  return () => {
    const children = childrenOf(postmaster.pid).filter((pid) => {
      if (!titles.has(pid)) titles.set(pid, processTitle(pid));
      const title = titles.get(pid) ?? '';
      return !CLIENT_BACKEND.test(title) || title.split(' ').includes(database);
    });
    return [postmaster.pid, ...children];
  };
}

/** Inodes of the TCP sockets listening on `port` (state 0A in /proc/net/tcp and tcp6). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      // No IPv6 on this host: the other table is enough.
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const localPort = Number.parseInt(fields[1]?.split(':')[1] ?? '', 16);
      if (localPort === port && fields[3] === '0A' && fields[9]) inodes.add(fields[9]);
    }
  }
  return inodes;
}

/** Whether a process holds one of these sockets; undefined when its descriptors may not be read. */
function holdsSocket(pid: number, inodes: Set<string>): boolean | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? '');
      } catch {
        // Closed between the listing and the read: not the listener.
        return false;
      }
    });
  } catch {
    // Another user's process without the right to read its descriptors.
    return undefined;
  }
}

/**
 * The RabbitMQ node's `beam.smp` serving `rabbitUrl`: the one listening on the URL's port; when descriptors
 * cannot be read, the only `beam.smp` on the host. Undefined for a remote broker or when it is ambiguous.
 */
export function rabbitmqProcesses(rabbitUrl: string): (() => number[]) | undefined {
  const url = new URL(rabbitUrl);
  if (!isLocalHost(url.hostname)) return undefined;
  const port = Number(url.port || (url.protocol === 'amqps:' ? 5671 : 5672));
  const inodes = listeningInodes(port);
  const nodes = allPids().filter((pid) => readProcStat(pid)?.comm === 'beam.smp');
  const holders = nodes.map((pid) => holdsSocket(pid, inodes));
  const listener = nodes.filter((_, index) => holders[index] === true);
  if (listener.length === 1) return () => listener;
  if (holders.every((holds) => holds === undefined) && nodes.length === 1) return () => nodes;
  return undefined;
}
