import cliProgress from 'cli-progress';

/** Progress of one phase (publishing, waiting for orders): a bar on a terminal, a plain line now and then elsewhere. */
export interface Progress {
  update(value: number, detail?: string): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Where to write; a bar only when it is a TTY. Default stdout. */
  stream?: NodeJS.WriteStream;
  /** Interval of the plain lines when not on a TTY, in milliseconds. Default 2000. */
  lineIntervalMs?: number;
}

const number = new Intl.NumberFormat('en-US');

export function startProgress(label: string, total: number, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stdout;
  return stream.isTTY
    ? barProgress(label, total, stream)
    : lineProgress(label, total, stream, options.lineIntervalMs);
}

function barProgress(label: string, total: number, stream: NodeJS.WriteStream): Progress {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label.padEnd(10)} [{bar}] {percentage}% | {value}/{total} | {rate}/s | {detail}`,
      hideCursor: true,
      barsize: 30,
    },
    cliProgress.Presets.shades_classic,
  );
  const rate = rateSinceFirstUpdate();
  bar.start(total, 0, { rate: 0, detail: '' });
  return {
    update(value, detail = '') {
      bar.update(value, { rate: number.format(rate(value)), detail });
    },
    stop: () => bar.stop(),
  };
}

function lineProgress(
  label: string,
  total: number,
  stream: NodeJS.WritableStream,
  intervalMs = 2000,
): Progress {
  const rate = rateSinceFirstUpdate();
  let value = 0;
  let detail = '';
  let lastLine = '';
  const print = () => {
    const percent = total > 0 ? Math.floor((value / total) * 100) : 100;
    const line =
      `${label}: ${number.format(value)}/${number.format(total)} (${percent}%), ` +
      `${number.format(rate(value))}/s${detail ? `, ${detail}` : ''}`;
    if (line !== lastLine) stream.write(`${line}\n`);
    lastLine = line;
  };
  const timer = setInterval(print, intervalMs);
  timer.unref();
  return {
    update(next, nextDetail = '') {
      rate(next);
      value = next;
      detail = nextDetail;
    },
    stop() {
      clearInterval(timer);
      print();
    },
  };
}

/** Units per second since the first value seen: what was done before this phase began does not count. */
function rateSinceFirstUpdate(): (value: number) => number {
  let first: { value: number; at: number } | undefined;
  return (value) => {
    first ??= { value, at: Date.now() };
    const seconds = (Date.now() - first.at) / 1000;
    return seconds < 0.05 ? 0 : Math.round((value - first.value) / seconds);
  };
}
