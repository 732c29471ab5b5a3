import type { BuildEvent } from '@hoist/builder';

interface StepView {
  label: string;
  status: 'running' | 'done' | 'cached' | 'error';
  started: number;
  ms?: number;
  tail: string[];
  partial: string;
}

const TAIL = 6;
const ESC = '\u001b[';

/**
 * The live progress display (`--progress=tty`): every step of the DAG with its state and time,
 * the last lines of each running step's output, byte progress of transfers, and a summary.
 * Redraws at most every 100 ms; colours off with NO_COLOR.
 */
export class TtyProgress {
  private readonly steps = new Map<string, StepView>();
  private readonly order: string[] = [];
  private readonly transfers = new Map<string, string>();
  private lines = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly t0 = Date.now();
  private readonly color: boolean;
  /** After finish(): the build's frame stays on screen; only transfers (a push) are live. */
  private finished = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.color = !env.NO_COLOR && out.isTTY === true;
  }

  private paint(code: string, s: string): string {
    return this.color ? `${ESC}${code}m${s}${ESC}0m` : s;
  }

  onEvent = (ev: BuildEvent): void => {
    if (ev.type === 'step') {
      let v = this.steps.get(ev.id);
      if (!v) {
        v = { label: ev.label, status: 'running', started: Date.now(), tail: [], partial: '' };
        this.steps.set(ev.id, v);
        this.order.push(ev.id);
      }
      if (ev.status === 'cached') v.status = 'cached';
      else if (ev.status === 'done') {
        v.status = 'done';
        v.ms = ev.ms ?? Date.now() - v.started;
      } else if (ev.status === 'error') {
        v.status = 'error';
        v.ms = ev.ms ?? Date.now() - v.started;
      }
    } else if (ev.type === 'log') {
      const v = this.steps.get(ev.id);
      if (v) {
        const parts = (v.partial + ev.data).split('\n');
        v.partial = parts.pop() ?? '';
        v.tail.push(...parts);
        if (v.tail.length > TAIL) v.tail.splice(0, v.tail.length - TAIL);
      }
    } else if (ev.type === 'warning') {
      this.clear();
      this.out.write(`${this.paint('33', 'WARNING:')} ${ev.message}${ev.line ? ` (line ${ev.line})` : ''}\n`);
    } else if (ev.type === 'info') {
      this.clear();
      this.out.write(`${ev.message}\n`);
    }
    this.schedule();
  };

  /** Byte progress of a pull or push (from the registry client). */
  transfer(id: string, text: string | undefined): void {
    if (text === undefined) this.transfers.delete(id);
    else this.transfers.set(id, text);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.render();
    }, 100);
  }

  private clear(): void {
    if (this.lines > 0) this.out.write(`${ESC}${this.lines}A${ESC}0J`);
    this.lines = 0;
  }

  private render(): void {
    this.clear();
    const cols = Math.max(40, this.out.columns ?? 100);
    const cut = (s: string): string => (s.length > cols - 1 ? s.slice(0, cols - 2) + '…' : s);
    const rows: string[] = [];
    const elapsed = ((Date.now() - this.t0) / 1000).toFixed(1);
    if (!this.finished) rows.push(this.paint('1', `[+] Building ${elapsed}s (${this.done()}/${this.order.length})`));
    for (const id of this.finished ? [] : this.order) {
      const v = this.steps.get(id)!;
      const t = v.status === 'cached' ? 'CACHED' : v.status === 'running' ? `${((Date.now() - v.started) / 1000).toFixed(1)}s` : `${((v.ms ?? 0) / 1000).toFixed(1)}s`;
      const mark = v.status === 'error' ? this.paint('31', '✗') : v.status === 'running' ? this.paint('36', '…') : this.paint('32', '✓');
      rows.push(cut(` ${mark} ${v.label}  ${t}`));
      if (v.status === 'running' || v.status === 'error') for (const l of [...v.tail, ...(v.partial ? [v.partial] : [])].slice(-TAIL)) rows.push(this.paint('2', cut(`     ${l}`)));
    }
    for (const t of this.transfers.values()) rows.push(cut(` ⇅ ${t}`));
    if (rows.length > 0) this.out.write(rows.join('\n') + '\n');
    this.lines = rows.length;
  }

  /** A line that stays (tagged, pushed, exported …): written above the live region, never erased. */
  print(text: string): void {
    this.clear();
    this.out.write(text);
    this.render();
  }

  /** Stop the live region (after a push): draws what is left and leaves it on screen. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.render();
    this.lines = 0;
  }

  private done(): number {
    return this.order.filter((id) => this.steps.get(id)!.status !== 'running').length;
  }

  /** Final frame plus a summary line. */
  finish(summary: string): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.transfers.clear();
    this.render();
    const cached = this.order.filter((id) => this.steps.get(id)!.status === 'cached').length;
    this.out.write(this.paint('1', `${summary} (${this.order.length} steps, ${cached} cached)`) + '\n');
    // the final frame and the summary stay: nothing drawn later moves up over them
    this.lines = 0;
    this.finished = true;
  }
}
