import { CpuSampler, hostTicks, processTicks } from './cpu-sampler.js';
import { clockTicksPerSecond } from './proc-stat.js';

/**
 * CPU time per message of a scenario, in microseconds, over the window from the first to the last message
 * settled: each consumer process's own, and PostgreSQL's and RabbitMQ's where they can be read on this host.
 */
export interface CpuPerMessage {
  /** Length of the window the CPU was read over, in milliseconds. */
  windowMs: number;
  /** Sum over the consumer processes, per message of the scenario. */
  consumerUs: number;
  /** Each consumer process's CPU over the same messages (for a fleet: its share of the sum). */
  perProcessUs: number[];
  /** PostgreSQL's processes for the scenario's database; null: not readable here; undefined: no database. */
  postgresUs?: number | null;
  /** RabbitMQ's beam.smp; null: not readable here. */
  rabbitmqUs: number | null;
  /**
   * This bench's own process: in steady mode mostly its publisher, which publishes inside the window (in
   * backlog mode it published before); also its samplers and progress line. Null: not readable here.
   */
  benchUs: number | null;
  /**
   * Share of all the host's CPUs busy over the window, in percent, whatever ran on them (consumers, servers,
   * the bench and its publisher, anything else); null: not readable here.
   */
  hostBusyPercent: number | null;
}

/** Microseconds of CPU per message, from clock ticks over the messages settled. */
export function microsecondsPerMessage(ticks: number, messages: number, ticksPerSecond: number): number {
  return messages > 0 ? (ticks * 1_000_000) / ticksPerSecond / messages : 0;
}

const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);

/** The busy share of `[busy, all]` host ticks, in percent; null without readings or time. */
export function busyPercent([busy, all]: number[]): number | null {
  return busy === undefined || all === undefined || all <= 0 ? null : (100 * busy) / all;
}

/** Where the server processes of a scenario are: a pid source, null when not readable, undefined when none. */
export interface ServerPids {
  postgres?: (() => number[]) | null;
  rabbitmq: (() => number[]) | null;
}

// Consumers are read often: the ceiling's whole window may last a few hundred milliseconds.
const CONSUMER_INTERVAL_MS = 20;
// Servers have more processes; their CPU is spread over the whole run.
const SERVER_INTERVAL_MS = 100;

/** Reads the CPU of a scenario's consumers and servers from the consumers' start until `finish`. */
export class ScenarioCpu {
  private readonly consumers: CpuSampler;
  private readonly postgres?: CpuSampler | null;
  private readonly rabbitmq: CpuSampler | null;
  private readonly bench: CpuSampler;
  private readonly host: CpuSampler;

  constructor(consumerPids: () => readonly number[], servers: ServerPids) {
    this.consumers = new CpuSampler(processTicks(consumerPids), CONSUMER_INTERVAL_MS);
    this.postgres = servers.postgres && new CpuSampler(processTicks(servers.postgres), SERVER_INTERVAL_MS);
    this.rabbitmq = servers.rabbitmq && new CpuSampler(processTicks(servers.rabbitmq), SERVER_INTERVAL_MS);
    this.bench = new CpuSampler(
      processTicks(() => [process.pid]),
      SERVER_INTERVAL_MS,
    );
    // As often as the consumers: one file for the whole host.
    this.host = new CpuSampler(hostTicks, CONSUMER_INTERVAL_MS);
  }

  /** Last readings; call it after the last message settled and before the consumers stop. */
  finish(): void {
    for (const sampler of [this.consumers, this.postgres, this.rabbitmq, this.bench, this.host]) {
      sampler?.finish();
    }
  }

  /** CPU per message between the first and the last settle; undefined when no consumer could be read. */
  perMessage(
    window: { fromMs: number; toMs: number },
    messages: number,
    ticksPerSecond = clockTicksPerSecond(),
  ): CpuPerMessage | undefined {
    if (!this.consumers.measured || window.toMs <= window.fromMs) return undefined;
    const perMessageUs = (sampler: CpuSampler | null) =>
      sampler?.measured
        ? microsecondsPerMessage(
            sum(sampler.ticksBetween(window.fromMs, window.toMs)),
            messages,
            ticksPerSecond,
          )
        : null;
    const perProcessUs = this.consumers
      .ticksBetween(window.fromMs, window.toMs)
      .map((ticks) => microsecondsPerMessage(ticks, messages, ticksPerSecond));
    return {
      windowMs: window.toMs - window.fromMs,
      consumerUs: sum(perProcessUs),
      perProcessUs,
      postgresUs: this.postgres === undefined ? undefined : perMessageUs(this.postgres),
      rabbitmqUs: perMessageUs(this.rabbitmq),
      benchUs: perMessageUs(this.bench),
      hostBusyPercent: busyPercent(this.host.ticksBetween(window.fromMs, window.toMs)),
    };
  }
}
