import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FaultProxy } from './fault-proxy.js';
import { waitFor } from './harness.js';

/** A backend that echoes every chunk back (after `prefix`, if any) and keeps the sockets it accepted. */
interface EchoServer {
  port: number;
  accepted: Socket[];
  close(): Promise<void>;
}

async function startEchoServer(prefix = ''): Promise<EchoServer> {
  const accepted: Socket[] = [];
  const server: Server = createServer((socket) => {
    accepted.push(socket);
    socket.on('error', () => undefined); // a reset from the proxy is what some tests cause
    socket.on('data', (chunk) => socket.write(prefix ? Buffer.concat([Buffer.from(prefix), chunk]) : chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the echo server got no port');
  return {
    port: address.port,
    accepted,
    close: () =>
      new Promise((resolve) => {
        for (const socket of accepted) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A client connection through the proxy, with everything it received and how it ended. */
class Client {
  received = Buffer.alloc(0);
  error: NodeJS.ErrnoException | undefined;
  closed = false;
  readonly socket: Socket;
  readonly connected: Promise<void>;

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.connected = new Promise((resolve) => this.socket.once('connect', resolve));
    this.socket.on('data', (chunk: Buffer) => (this.received = Buffer.concat([this.received, chunk])));
    this.socket.on('error', (error) => (this.error = error));
    this.socket.on('close', () => (this.closed = true));
  }

  /** Sends `text` and resolves with the time until all of it came back, in milliseconds. */
  async roundTrip(text: string | Buffer, timeoutMs = 10_000): Promise<number> {
    const startedMs = Date.now();
    const expected = this.received.length + Buffer.byteLength(text);
    this.socket.write(text);
    await waitFor(`${expected} bytes echoed`, () => this.received.length >= expected, { timeoutMs });
    return Date.now() - startedMs;
  }
}

/** Waits `ms` and tells whether `condition` stayed false all along: for the faults that must let nothing by. */
async function staysFalse(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (condition()) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return !condition();
}

describe('FaultProxy', () => {
  let echo: EchoServer;
  let other: EchoServer;
  let proxy: FaultProxy;
  const clients: Client[] = [];
  const client = () => {
    const opened = new Client(proxy.port);
    clients.push(opened);
    return opened;
  };

  beforeAll(async () => {
    [echo, other] = await Promise.all([startEchoServer(), startEchoServer('other:')]);
  });

  afterEach(async () => {
    for (const opened of clients.splice(0)) opened.socket.destroy();
    await proxy.close();
  });

  afterAll(async () => {
    await Promise.all([echo.close(), other.close()]);
  });

  it('forwards every byte both ways while healthy', async () => {
    proxy = await FaultProxy.start('127.0.0.1', echo.port);
    const first = client();
    const everyByte = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
    await first.roundTrip(everyByte);
    const megabyte = Buffer.alloc(1024 * 1024, 'x');
    await first.roundTrip(megabyte);
    expect(first.received.equals(Buffer.concat([everyByte, megabyte]))).toBe(true);
    expect(proxy.openConnections).toBe(1);
  });

  it('lets no byte cross in a black hole, keeps the sockets open, and delivers what was held once healed', async () => {
    proxy = await FaultProxy.start('127.0.0.1', echo.port);
    const open = client();
    await open.roundTrip('before');
    const backendsBefore = echo.accepted.length;
    proxy.blackhole();
    open.socket.write('held');
    const late = client();
    await late.connected; // accepted by the proxy...
    late.socket.write('late');
    expect(
      await staysFalse(() => open.received.length > 'before'.length || late.received.length > 0, 500),
    ).toBe(true);
    expect(echo.accepted.length).toBe(backendsBefore); // ...but it went nowhere
    expect([open.closed, late.closed, open.error, late.error]).toEqual([false, false, undefined, undefined]);
    proxy.heal();
    await waitFor(
      'the held bytes',
      () => open.received.toString() === 'beforeheld' && late.received.toString() === 'late',
    );
    expect(echo.accepted.length).toBe(backendsBefore + 1);
  });

  it('delays each chunk by the latency in each direction, in order', async () => {
    proxy = await FaultProxy.start('127.0.0.1', echo.port);
    const slow = client();
    await slow.roundTrip('warm-up');
    proxy.latency(200);
    const parts = ['one,', 'two,', 'three,', 'four'];
    const startedMs = Date.now();
    for (const part of parts) slow.socket.write(part);
    await waitFor('every part echoed', () => slow.received.toString() === `warm-up${parts.join('')}`);
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(400);
    proxy.heal();
    expect(await slow.roundTrip('fast again')).toBeLessThan(200);
  });

  it('carries at most the bandwidth', async () => {
    proxy = await FaultProxy.start('127.0.0.1', echo.port);
    const slow = client();
    await slow.roundTrip('warm-up');
    proxy.bandwidth(10_000);
    // 15 kB each way at 10 kB/s: the two directions overlap, so at least the 1.5 s of one of them.
    const elapsedMs = await slow.roundTrip('y'.repeat(15_000));
    expect(elapsedMs).toBeGreaterThanOrEqual(1400);
    expect(elapsedMs).toBeLessThan(5000);
  });

  it('resets every open connection on both sides and accepts new ones', async () => {
    proxy = await FaultProxy.start('127.0.0.1', echo.port);
    const victim = client();
    await victim.roundTrip('before');
    const backend = echo.accepted.at(-1)!;
    let backendError: NodeJS.ErrnoException | undefined;
    backend.on('error', (error) => (backendError = error));
    proxy.reset();
    await waitFor('the client reset', () => victim.closed);
    expect(victim.error?.code).toBe('ECONNRESET');
    await waitFor('the backend reset', () => backend.destroyed);
    expect(backendError?.code).toBe('ECONNRESET');
    const next = client();
    await next.roundTrip('after');
    expect(next.received.toString()).toBe('after');
  });

  it('sends new connections to the new target, and the open ones too when asked to reset them', async () => {
    proxy = await FaultProxy.start('127.0.0.1', echo.port);
    const before = client();
    await before.roundTrip('a');
    proxy.retarget('127.0.0.1', other.port);
    const after = client();
    await after.roundTrip('b');
    await before.roundTrip('c');
    expect([before.received.toString(), after.received.toString()]).toEqual(['ac', 'other:b']);
    proxy.retarget('127.0.0.1', other.port, { resetExisting: true });
    await waitFor('the open connections reset', () => before.closed && after.closed);
    const moved = client();
    await moved.roundTrip('d');
    expect(moved.received.toString()).toBe('other:d');
  });

  it('passes a refused backend connection on as a reset', async () => {
    const gone = await startEchoServer();
    await gone.close();
    proxy = await FaultProxy.start('127.0.0.1', gone.port);
    const refused = client();
    await waitFor('the client reset', () => refused.closed);
    expect(refused.error?.code).toBe('ECONNRESET');
  });

  it('stops listening and ends every connection on close, even in a black hole', async () => {
    proxy = await FaultProxy.start('127.0.0.1', echo.port);
    const open = client();
    await open.roundTrip('a');
    proxy.blackhole();
    await proxy.close();
    await waitFor('the open connection ended', () => open.closed);
    const refused = client();
    await waitFor('the new connection refused', () => refused.closed);
    expect(refused.error?.code).toBe('ECONNREFUSED');
    expect(proxy.openConnections).toBe(0);
  });

  it('refuses a negative latency or bandwidth', async () => {
    proxy = await FaultProxy.start('127.0.0.1', echo.port);
    expect(() => proxy.latency(-1)).toThrow(RangeError);
    expect(() => proxy.bandwidth(Number.NaN)).toThrow(RangeError);
  });
});
