// autocannon rather than undici's pool: it keeps N keep-alive connections busy, paces them (overallRate),
// stops on a count or a duration, and records latency in an HDR histogram, while its `requests` hooks still
// give each request its own path and body and show each response's status. With pipelining 1 a connection
// has one request in flight, so the context a request is built with is the one its response arrives in.
import autocannon from 'autocannon';
import type { HttpRequest } from './http-requests.js';

export interface HttpDriveOptions {
  /** Base URL of the API, e.g. http://127.0.0.1:8080. */
  url: string;
  /** Keep-alive connections, each with one request in flight. */
  connections: number;
  /** Stop after this many seconds even if requests are left; 0 sends every request. */
  durationS: number;
  /** Requests per second over all connections; 0 = as fast as the API answers. */
  ratePerSecond: number;
  /** Longest wait for one response, in seconds; a request without one counts as unanswered. Default 10. */
  timeoutS?: number;
  /** Called after each response with the number answered so far. */
  onAnswered?: (answered: number) => void;
}

export interface HttpLatency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface HttpDriveResult {
  /** Status of each request by its index: a status code, SENT_UNANSWERED, or NOT_SENT. */
  statuses: Int16Array;
  sent: number;
  answered: number;
  /** Responses per status code, e.g. { '202': 1800, '400': 20 }. */
  statusCounts: Record<string, number>;
  /** Response time of every answered request, in milliseconds. */
  latencyMs: HttpLatency;
  /** Connection errors and timeouts, as autocannon counts them. */
  errors: number;
  timeouts: number;
  startedAt: Date;
  finishedAt: Date;
}

export const NOT_SENT = 0;
export const SENT_UNANSWERED = -1;

interface RequestContext {
  index?: number;
}

/** Sends the requests in order over `connections` connections and records how each was answered. */
export async function driveHttp(
  requests: readonly HttpRequest[],
  options: HttpDriveOptions,
): Promise<HttpDriveResult> {
  const statuses = new Int16Array(requests.length);
  const startedAt = new Date();
  if (requests.length === 0) {
    return { ...emptyResult(statuses), startedAt, finishedAt: startedAt };
  }
  let next = 0;
  let answered = 0;
  const limit =
    options.durationS > 0
      ? { duration: options.durationS, maxOverallRequests: requests.length }
      : { amount: requests.length };
  const result = await autocannon({
    url: options.url,
    connections: Math.min(options.connections, requests.length),
    pipelining: 1,
    timeout: options.timeoutS ?? 10,
    ...(options.ratePerSecond > 0 ? { overallRate: options.ratePerSecond } : {}),
    ...limit,
    // autocannon checks for the end once per sample: a short one ends the run soon after the last response.
    sampleInt: 100,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (request, context: RequestContext) => {
          // autocannon builds at most `amount` (or `maxOverallRequests`) requests, one per index.
          const index = next++;
          const entry = requests[index];
          if (!entry) throw new RangeError(`request ${index} of ${requests.length} asked for`);
          context.index = index;
          statuses[index] = SENT_UNANSWERED;
          return { ...request, method: 'POST', path: entry.path, body: entry.body };
        },
        onResponse: (status, _body, context: RequestContext) => {
          if (context.index === undefined) return;
          statuses[context.index] = status;
          answered += 1;
          options.onAnswered?.(answered);
        },
      },
    ],
  });
  const statusCounts: Record<string, number> = {};
  for (const [status, { count = 0 }] of Object.entries(result.statusCodeStats ?? {})) {
    statusCounts[status] = count;
  }
  return {
    statuses,
    sent: statuses.reduce((sent, status) => (status === NOT_SENT ? sent : sent + 1), 0),
    answered,
    statusCounts,
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    errors: result.errors,
    timeouts: result.timeouts,
    startedAt: result.start,
    finishedAt: result.finish,
  };
}

function emptyResult(statuses: Int16Array): Omit<HttpDriveResult, 'startedAt' | 'finishedAt'> {
  return {
    statuses,
    sent: 0,
    answered: 0,
    statusCounts: {},
    latencyMs: { p50: 0, p90: 0, p99: 0, max: 0 },
    errors: 0,
    timeouts: 0,
  };
}
