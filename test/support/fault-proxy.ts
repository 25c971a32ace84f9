import { createServer, type Server, type Socket, connect } from 'node:net';

/** Bytes queued in one direction of one connection before the proxy stops reading from the sender. */
const HIGH_WATER_BYTES = 64 * 1024;
/** A slow link sends slices of at most this many milliseconds' worth of bytes. */
const BANDWIDTH_SLICE_MS = 50;

/**
 * Ends `socket` with a TCP RST, or, once its own side has sent a FIN, with a plain destroy: Node's
 * `resetAndDestroy()` on a socket whose shutdown is under way fails (uv_tcp_close_reset: EINVAL) and leaves its
 * handle open for good, and a process holding such a handle spins at exit instead of ending.
 */
function reset(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.writableEnded) socket.destroy();
  else socket.resetAndDestroy();
}

/** The faults in force, shared by every connection of one proxy; each change wakes whoever waits on it. */
class FaultState {
  blackhole = false;
  latencyMs = 0;
  bytesPerSecond = 0;
  private wake: () => void = () => undefined;
  private nextChange: Promise<void> = this.newChange();

  private newChange(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  /** Resolves at the next change of the faults (and immediately after `notify`). */
  get changed(): Promise<void> {
    return this.nextChange;
  }

  notify(): void {
    const wake = this.wake;
    this.nextChange = this.newChange();
    wake();
  }

  /** Resolves after `ms`, or sooner when the faults change (the caller looks at them again). */
  async waitAtMost(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, ms))), this.changed]).finally(
      () => clearTimeout(timer),
    );
  }
}

/** What crosses one direction of a connection: bytes, then how the sender ended (a FIN or a reset). */
type Item = { kind: 'data'; chunk: Buffer; arrivedMs: number } | { kind: 'end' } | { kind: 'reset' };

/**
 * One direction of one proxied connection: chunks leave in the order they came, each held while the black
 * hole is on, for the latency after it arrived, and for as long as the bandwidth needs. The sender is paused
 * past HIGH_WATER_BYTES, as a full TCP window would stop it.
 */
class Pipe {
  private readonly items: Item[] = [];
  private queuedBytes = 0;
  private pumping = false;
  private nextSendMs = 0;

  constructor(
    private readonly source: Socket,
    private readonly destination: Promise<Socket | undefined>,
    private readonly faults: FaultState,
  ) {}

  push(item: Item): void {
    this.items.push(item);
    if (item.kind === 'data') {
      this.queuedBytes += item.chunk.length;
      if (this.queuedBytes > HIGH_WATER_BYTES) this.source.pause();
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      const destination = await this.destination;
      if (!destination) return; // the backend was never reached: the connection is gone already
      for (let item = this.items[0]; item; item = this.items[0]) {
        if (destination.destroyed) return;
        if (!(await this.mayPass(item))) continue;
        if (item.kind === 'end') destination.end();
        else if (item.kind === 'reset') reset(destination);
        else if (!(await this.send(destination, item))) continue;
        this.items.shift();
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Waits out the black hole and the latency; false when the faults changed meanwhile (look again). */
  private async mayPass(item: Item): Promise<boolean> {
    const { faults } = this;
    if (faults.blackhole) {
      await faults.changed;
      return false;
    }
    if (item.kind !== 'data') return true;
    const dueInMs = item.arrivedMs + faults.latencyMs - Date.now();
    if (dueInMs <= 0) return true;
    await faults.waitAtMost(dueInMs);
    return false;
  }

  /** Writes the chunk, or as much of it as the bandwidth allows now; true once all of it is written. */
  private async send(destination: Socket, item: Item & { kind: 'data' }): Promise<boolean> {
    const { bytesPerSecond } = this.faults;
    let slice = item.chunk;
    if (bytesPerSecond > 0) {
      const waitMs = this.nextSendMs - Date.now();
      if (waitMs > 0) {
        await this.faults.waitAtMost(waitMs);
        return false;
      }
      const sliceBytes = Math.max(1, Math.floor((bytesPerSecond * BANDWIDTH_SLICE_MS) / 1000));
      slice = item.chunk.subarray(0, sliceBytes);
      this.nextSendMs = Math.max(Date.now(), this.nextSendMs) + (slice.length * 1000) / bytesPerSecond;
    }
    const flushed = destination.write(slice);
    this.queuedBytes -= slice.length;
    if (this.queuedBytes <= HIGH_WATER_BYTES) this.source.resume();
    if (!flushed) await new Promise((resolve) => destination.once('drain', resolve).once('close', resolve));
    if (slice.length === item.chunk.length) return true;
    item.chunk = item.chunk.subarray(slice.length);
    return false;
  }
}

/** One client connection and its connection to the backend. */
class ProxiedConnection {
  private backend: Socket | undefined;

  constructor(
    private readonly client: Socket,
    faults: FaultState,
    target: () => { host: string; port: number },
    private readonly onClosed: (connection: ProxiedConnection) => void,
  ) {
    const backend = this.connectWhenReachable(faults, target);
    const upstream = new Pipe(client, backend, faults);
    client.on('data', (chunk: Buffer) => upstream.push({ kind: 'data', chunk, arrivedMs: Date.now() }));
    client.on('end', () => upstream.push({ kind: 'end' }));
    client.on('error', () => upstream.push({ kind: 'reset' }));
    client.on('close', () => this.closed());
    void backend.then((socket) => {
      if (!socket) return;
      const downstream = new Pipe(socket, Promise.resolve(client), faults);
      socket.on('data', (chunk: Buffer) => downstream.push({ kind: 'data', chunk, arrivedMs: Date.now() }));
      socket.on('end', () => downstream.push({ kind: 'end' }));
      socket.on('error', () => downstream.push({ kind: 'reset' }));
      socket.on('close', () => this.closed());
    });
  }

  /**
   * Connects to the target once no black hole is on (a connection made in a black hole goes nowhere until it
   * lifts); undefined when the client left first. A backend that refuses is passed on as a reset.
   */
  private async connectWhenReachable(
    faults: FaultState,
    target: () => { host: string; port: number },
  ): Promise<Socket | undefined> {
    const clientClosed = new Promise((resolve) => this.client.once('close', resolve));
    while (faults.blackhole && !this.client.destroyed) await Promise.race([faults.changed, clientClosed]);
    if (this.client.destroyed) return undefined;
    const { host, port } = target();
    const socket = connect({ host, port, noDelay: true });
    this.backend = socket;
    socket.once('error', () => reset(this.client));
    return socket;
  }

  private closed(): void {
    if (this.client.destroyed && (this.backend?.destroyed ?? true)) this.onClosed(this);
  }

  /** Ends both sides at once with a TCP RST, as a crashed middlebox or a dropped NAT entry does. */
  reset(): void {
    reset(this.client);
    if (this.backend) reset(this.backend);
  }
}

/**
 * A TCP proxy of a test's own in front of one backend (PostgreSQL, RabbitMQ), on a free 127.0.0.1 port, whose
 * faults are switched at run time for every open and every new connection: a black hole (sockets stay
 * open, no byte crosses either way, as on a partitioned network), added latency, a slow link, resets of every
 * open connection, and a new backend for new connections (an address moved to another server).
 */
export class FaultProxy {
  private readonly faults = new FaultState();
  private readonly connections = new Set<ProxiedConnection>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private target: { host: string; port: number },
  ) {}

  /** Listens on a free port of 127.0.0.1 and forwards every connection to `targetHost:targetPort`. */
  static async start(targetHost: string, targetPort: number): Promise<FaultProxy> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('the fault proxy got no port to listen on');
    const proxy = new FaultProxy(server, address.port, { host: targetHost, port: targetPort });
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  private accept(client: Socket): void {
    if (this.closing) {
      reset(client);
      return;
    }
    const connection = new ProxiedConnection(
      client,
      this.faults,
      () => this.target,
      (closed) => this.connections.delete(closed),
    );
    this.connections.add(connection);
  }

  /** `host:port` of the proxy, for a URL. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Client connections currently open through the proxy. */
  get openConnections(): number {
    return this.connections.size;
  }

  /** What is in force, for reports. */
  get state(): string {
    const { blackhole, latencyMs, bytesPerSecond } = this.faults;
    const parts = [
      blackhole && 'black hole',
      latencyMs > 0 && `latency ${latencyMs} ms`,
      bytesPerSecond > 0 && `${bytesPerSecond} B/s`,
    ].filter(Boolean);
    return `${parts.length > 0 ? parts.join(', ') : 'healthy'} → ${this.target.host}:${this.target.port}`;
  }

  /** No byte crosses in either direction, on open and new connections; sockets stay open. */
  blackhole(): void {
    this.faults.blackhole = true;
    this.faults.notify();
  }

  /** Each chunk, in either direction, leaves `ms` after it arrived; order is kept. */
  latency(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`latency must be 0 ms or more, not ${ms}`);
    this.faults.latencyMs = ms;
    this.faults.notify();
  }

  /** Each direction of each connection carries at most `bytesPerSecond`; 0 lifts the limit. */
  bandwidth(bytesPerSecond: number): void {
    if (!(bytesPerSecond >= 0))
      throw new RangeError(`bandwidth must be 0 B/s or more, not ${bytesPerSecond}`);
    this.faults.bytesPerSecond = bytesPerSecond;
    this.faults.notify();
  }

  /** Destroys every open connection, both sides, with a TCP RST; new ones are accepted as before. */
  reset(): void {
    for (const connection of this.connections) connection.reset();
  }

  /** Lifts every fault: held bytes flow again, as TCP retransmits them once a partition heals. */
  heal(): void {
    Object.assign(this.faults, { blackhole: false, latencyMs: 0, bytesPerSecond: 0 });
    this.faults.notify();
  }

  /** New connections go to `host:port` (the address moved); `resetExisting` also resets the open ones. */
  retarget(host: string, port: number, { resetExisting = false } = {}): void {
    this.target = { host, port };
    if (resetExisting) this.reset();
  }

  /** Stops listening and resets every open connection; a second call returns the first one's promise. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.heal();
      this.reset();
    });
    return this.closing;
  }
}
