/**
 * The live progress line on stderr: rewritten in place on a terminal, one line
 * per step otherwise (so CI logs stay short).
 */

/** A progress line. */
export class ProgressLine {
  private readonly tty = Boolean(process.stderr.isTTY);
  private prefix = "";
  private started = Date.now();
  private lastDraw = 0;

  /** Start a new step. */
  step(prefix: string): void {
    this.prefix = prefix;
    this.started = Date.now();
    if (this.tty) this.draw("");
    else process.stderr.write(`${prefix}\n`);
  }

  /** Update the current step's detail (terminal only; throttled). */
  update(detail: string): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.draw(detail);
  }

  /** Print a whole line above the progress line. */
  log(line: string): void {
    if (this.tty) process.stderr.write("\r\x1b[K");
    process.stderr.write(`${line}\n`);
  }

  /** Clear the line at the end. */
  done(): void {
    if (this.tty) process.stderr.write("\r\x1b[K");
  }

  private draw(detail: string): void {
    const secs = ((Date.now() - this.started) / 1000).toFixed(1);
    const text = `${this.prefix} ${secs}s ${detail}`;
    const width = process.stderr.columns ?? 120;
    process.stderr.write(`\r\x1b[K${text.slice(0, width - 1)}`);
  }
}
