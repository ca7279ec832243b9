// The loss and PSNR of a training, epoch by epoch: a hand-written SVG chart that grows as
// progress events arrive (two lines, each on its own scale: loss on the left, PSNR on the right).
const SVG = "http://www.w3.org/2000/svg"; // a namespace name, never fetched
const FULL = { width: 320, height: 150, left: 44, right: 44, top: 10, bottom: 26 };
const COMPACT = { width: 100, height: 24, left: 1, right: 1, top: 2, bottom: 2 };

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

function short(value) {
  return String(Number(value.toPrecision(3)));
}

// The points' y values scaled into the plot box; a flat series sits in the middle.
function scaled(values, box) {
  const low = Math.min(...values);
  const span = Math.max(...values) - low;
  const bottom = box.height - box.bottom;
  const tall = bottom - box.top;
  return values.map((v) => (span ? bottom - (tall * (v - low)) / span : box.top + tall / 2));
}

function line(points, name, box, field) {
  const kept = points.filter((p) => typeof p[field] === "number");
  const node = svg("polyline", { class: `series ${name}`, "data-points": String(kept.length) });
  if (!kept.length) return node;
  const first = kept[0].epoch;
  const wide = Math.max(kept.at(-1).epoch - first, 1);
  const plotWidth = box.width - box.left - box.right;
  const ys = scaled(kept.map((p) => p[field]), box);
  const xs = kept.map((p) => box.left + (plotWidth * (p.epoch - first)) / wide);
  node.setAttribute("points", xs.map((x, i) => `${x.toFixed(2)},${ys[i].toFixed(2)}`).join(" "));
  return node;
}

function axisLabels(chart, points, box) {
  const bottom = box.height - box.bottom;
  chart.append(svg("line", { class: "axis", x1: box.left, x2: box.width - box.right, y1: bottom, y2: bottom }));
  for (const [field, x, anchor, name] of [["loss", 4, "start", "loss"], ["psnr", box.width - 4, "end", "psnr"]]) {
    const values = points.map((p) => p[field]).filter((v) => typeof v === "number");
    if (!values.length) continue;
    chart.append(svg("text", { x, y: box.top + 8, "text-anchor": anchor, class: name }, short(Math.max(...values))));
    chart.append(svg("text", { x, y: bottom, "text-anchor": anchor, class: name }, short(Math.min(...values))));
  }
  if (!points.length) return;
  const y = box.height - 8;
  chart.append(svg("text", { x: box.left, y, class: "tick" }, `epoch ${points[0].epoch}`));
  chart.append(svg("text", { x: box.width - box.right, y, "text-anchor": "end", class: "tick" }, `${points.at(-1).epoch}`));
}

function describe(points) {
  if (!points.length) return "loss and PSNR: no epoch finished yet";
  const last = points.at(-1);
  const parts = [`loss and PSNR over ${points.length} epochs`];
  if (typeof last.loss === "number") parts.push(`last loss ${short(last.loss)}`);
  if (typeof last.psnr === "number") parts.push(`last PSNR ${short(last.psnr)} dB`);
  return parts.join(", ");
}

/** An SVG chart of `points` ({epoch, loss, psnr}, in epoch order); compact: no labels. */
export function progressChart(points, compact = false) {
  const box = compact ? COMPACT : FULL;
  const chart = svg("svg", {
    class: compact ? "progress-chart compact" : "progress-chart",
    viewBox: `0 0 ${box.width} ${box.height}`,
    role: "img",
    "aria-label": describe(points),
  });
  if (compact) chart.setAttribute("preserveAspectRatio", "none"); // a sparkline fills its cell
  if (!compact) axisLabels(chart, points, box);
  chart.append(line(points, "loss", box, "loss"), line(points, "psnr", box, "psnr"));
  return chart;
}

/** Epoch -> point, so a resumed attempt that repeats epochs overwrites rather than doubles. */
export class ProgressSeries {
  constructor() {
    this.byJob = new Map();
  }

  add(jobId, data) {
    if (typeof data.epoch !== "number" || typeof data.loss !== "number") return false;
    const points = this.byJob.get(jobId) ?? new Map();
    points.set(data.epoch, { epoch: data.epoch, loss: data.loss, psnr: data.psnr ?? null });
    this.byJob.set(jobId, points);
    return true;
  }

  points(jobId) {
    return [...(this.byJob.get(jobId)?.values() ?? [])].sort((a, b) => a.epoch - b.epoch);
  }
}
