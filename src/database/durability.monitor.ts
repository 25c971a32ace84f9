import { Logger } from '@nestjs/common';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import { describeDatabaseFault } from './database-errors.js';
import type { PrismaService } from './prisma.service.js';

/** What the database says about how durable a commit it acknowledges is. */
export interface Durability {
  /** The session's `synchronous_commit`: on, remote_apply and remote_write wait for a synchronous standby. */
  synchronousCommit: string;
  /** `synchronous_standby_names`: empty means no standby is waited for. */
  standbyNames: string;
  /** Synchronous (or quorum) standbys streaming now; undefined when the role may not see them. */
  synchronousStandbys: number | undefined;
  /** The server is itself a standby. */
  inRecovery: boolean;
}

/** Whether an acked order survives the loss of the primary: yes, no, or unknown, and why, in words. */
export interface DurabilityVerdict {
  survivesFailover: boolean | undefined;
  words: string;
}

const WAITS_FOR_STANDBY = new Set(['on', 'remote_apply', 'remote_write']);

/** The verdict on what the database said; pure, so that each case has a test. */
export function durabilityVerdict(durability: Durability): DurabilityVerdict {
  const { synchronousCommit, standbyNames, synchronousStandbys, inRecovery } = durability;
  const settings = `synchronous_commit=${synchronousCommit}, synchronous_standby_names='${standbyNames}'`;
  if (inRecovery) {
    return {
      survivesFailover: undefined,
      words: `unknown: the database is a standby in recovery (${settings})`,
    };
  }
  if (!WAITS_FOR_STANDBY.has(synchronousCommit)) {
    return {
      survivesFailover: false,
      words: `no: a commit is acknowledged before any standby has it (${settings}); a failover can lose acked orders`,
    };
  }
  if (standbyNames.trim() === '') {
    return {
      survivesFailover: false,
      words:
        `no: no synchronous standby is configured (${settings}); a failover can lose acked orders, ` +
        'unless the platform replicates synchronously below PostgreSQL (RDS Multi-AZ, Aurora)',
    };
  }
  if (synchronousStandbys === undefined) {
    return {
      survivesFailover: undefined,
      words: `unknown: this role may not read pg_stat_replication (grant it pg_monitor) (${settings})`,
    };
  }
  if (synchronousStandbys === 0) {
    return {
      survivesFailover: undefined,
      words: `no synchronous standby is streaming now (${settings}): commits wait until one is back`,
    };
  }
  return {
    survivesFailover: true,
    words: `yes: ${synchronousStandbys} synchronous standby(s) confirm each commit (${settings})`,
  };
}

// 0 or more when the role may read the standbys' state (pg_read_all_stats, which pg_monitor holds), else NULL.
const DURABILITY_QUERY = `
  SELECT current_setting('synchronous_commit') AS synchronous_commit,
         current_setting('synchronous_standby_names') AS standby_names,
         pg_is_in_recovery() AS in_recovery,
         CASE WHEN pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
              THEN (SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum'))::int
         END AS synchronous_standbys`;

interface DurabilityRow {
  synchronous_commit: string;
  standby_names: string;
  in_recovery: boolean;
  synchronous_standbys: number | null;
}

/**
 * Tells the operator whether an acked order would survive the loss of the primary: at start (a log line) and
 * on /metrics, read again every `intervalMs` and after each failover (the circuit closing), since a promoted
 * standby may have no standby of its own.
 */
export class DurabilityMonitor {
  private readonly logger = new Logger(DurabilityMonitor.name);
  private timer: NodeJS.Timeout | undefined;
  private lastWords: string | undefined;

  constructor(
    private readonly prisma: PrismaService,
    private readonly metrics: WorkerMetrics,
    private readonly intervalMs: number,
  ) {}

  /** Reads the durability now and every `intervalMs`; the first reading is logged whatever it says. */
  start(): Promise<void> {
    this.timer ??= setInterval(() => void this.check(), this.intervalMs).unref();
    return this.check();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One reading: the gauges, and a log line when the verdict changed (warn unless it is a yes). */
  async check(): Promise<void> {
    let durability: Durability;
    try {
      const [row] = await this.prisma.$queryRawUnsafe<DurabilityRow[]>(DURABILITY_QUERY);
      if (!row) throw new Error('the durability query returned no row');
      durability = {
        synchronousCommit: row.synchronous_commit,
        standbyNames: row.standby_names,
        synchronousStandbys: row.synchronous_standbys ?? undefined,
        inRecovery: row.in_recovery,
      };
    } catch (error) {
      // The database is away: the gauges keep their last reading, and the circuit breaker says the rest.
      this.logger.debug(`durability not read: ${describeDatabaseFault(error)}`);
      return;
    }
    const verdict = durabilityVerdict(durability);
    this.metrics.durability(durability.synchronousStandbys, durability.synchronousCommit);
    if (verdict.words === this.lastWords) return;
    this.lastWords = verdict.words;
    const line = `acked orders survive the loss of the primary: ${verdict.words}`;
    if (verdict.survivesFailover) this.logger.log(line);
    else this.logger.warn(line);
  }
}
