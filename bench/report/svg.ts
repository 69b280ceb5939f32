/**
 * A hand-written horizontal bar chart in SVG (no dependencies): one bar per system,
 * coloured by kind (Ferry, peer, raw limit), linear or logarithmic scale.
 */
import { formatNumber } from "../support/stats.ts";

/** One bar. */
export interface Bar {
  label: string;
  value: number;
  /** Range over runs, drawn as a whisker when it differs from the value. */
  min?: number;
  max?: number;
  kind: "ferry" | "peer" | "raw";
  /** A short note after the value (e.g. "capped"). */
  note?: string;
}

/** Options of {@link barChart}. */
export interface BarChartOptions {
  title: string;
  subtitle?: string;
  unit: string;
  /** Logarithmic axis. Default false. */
  log?: boolean;
}

const COLORS = { ferry: "#e8590c", peer: "#1c7ed6", raw: "#868e96" } as const;
const WIDTH = 860;
const LABEL_W = 200;
const VALUE_W = 150;
const ROW_H = 24;
const TOP = 62;

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/** Render bars as an SVG document. Bars with no finite positive value are listed as "n/a". */
export function barChart(bars: readonly Bar[], options: BarChartOptions): string {
  const plotW = WIDTH - LABEL_W - VALUE_W - 20;
  const finite = bars.filter((b) => Number.isFinite(b.value) && b.value > 0);
  const top = Math.max(1e-9, ...finite.map((b) => Math.max(b.value, b.max ?? 0)));
  const bottom = Math.min(...finite.map((b) => Math.min(b.value, b.min ?? b.value)), top);
  const logMin = Math.pow(10, Math.floor(Math.log10(Math.max(bottom, 1e-3))));
  const logMax = Math.pow(10, Math.ceil(Math.log10(top)));
  const scale = (v: number): number => {
    if (!(v > 0)) return 0;
    if (!options.log) return (v / top) * plotW;
    return ((Math.log10(v) - Math.log10(logMin)) / (Math.log10(logMax) - Math.log10(logMin) || 1)) * plotW;
  };
  const height = TOP + bars.length * ROW_H + 50;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="12" y="22" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`);
  if (options.subtitle) out.push(`<text x="12" y="40" fill="#555">${escapeXml(options.subtitle)}</text>`);
  // Grid lines.
  const ticks: number[] = [];
  if (options.log) for (let v = logMin; v <= logMax * 1.0001; v *= 10) ticks.push(v);
  else for (let k = 0; k <= 4; k++) ticks.push((top * k) / 4);
  const axisY = TOP + bars.length * ROW_H + 4;
  for (const v of ticks) {
    const x = LABEL_W + scale(v);
    out.push(`<line x1="${x.toFixed(1)}" y1="${TOP - 6}" x2="${x.toFixed(1)}" y2="${axisY}" stroke="#e9ecef"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${axisY + 14}" text-anchor="middle" fill="#555">${escapeXml(formatNumber(v))}</text>`);
  }
  out.push(`<text x="${LABEL_W + plotW / 2}" y="${axisY + 30}" text-anchor="middle" fill="#333">${escapeXml(options.unit)}${options.log ? " (log scale)" : ""}</text>`);
  bars.forEach((b, i) => {
    const y = TOP + i * ROW_H;
    out.push(`<text x="${LABEL_W - 8}" y="${y + 15}" text-anchor="end">${escapeXml(b.label)}</text>`);
    const ok = Number.isFinite(b.value) && b.value > 0;
    if (ok) {
      const w = Math.max(1, scale(b.value));
      out.push(`<rect x="${LABEL_W}" y="${y + 4}" width="${w.toFixed(1)}" height="${ROW_H - 8}" fill="${COLORS[b.kind]}"/>`);
      if (b.min !== undefined && b.max !== undefined && b.max > b.min) {
        const x1 = LABEL_W + scale(b.min);
        const x2 = LABEL_W + scale(b.max);
        out.push(`<line x1="${x1.toFixed(1)}" y1="${y + ROW_H / 2}" x2="${x2.toFixed(1)}" y2="${y + ROW_H / 2}" stroke="#212529" stroke-width="1.5"/>`);
      }
    }
    const text = ok ? `${formatNumber(b.value)}${b.note ? ` (${b.note})` : ""}` : `n/a${b.note ? ` (${b.note})` : ""}`;
    out.push(`<text x="${LABEL_W + plotW + 8}" y="${y + 15}">${escapeXml(text)}</text>`);
  });
  const legendY = height - 10;
  let lx = 12;
  for (const [kind, label] of [["ferry", "Ferry"], ["peer", "peer job system"], ["raw", "raw client (limit)"]] as const) {
    out.push(`<rect x="${lx}" y="${legendY - 10}" width="12" height="12" fill="${COLORS[kind]}"/>`);
    out.push(`<text x="${lx + 16}" y="${legendY}">${label}</text>`);
    lx += 30 + label.length * 7;
  }
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
