// Drives `bams3 serve --viewer` in Debian's headless chromium through playwright-core, and
// reports what igv.js shows, as one JSON line:
//
//   node viewer.mjs PAGE_URL CHR START END SCREENSHOT.png
//
// START/END are 0-based half-open. The line has `count` (alignments igv.js loaded that overlap
// the region), `downsampled` (reads igv.js left out: must be 0 for the count to mean anything),
// `foreign` (requests to anywhere but the server: the page must need none), `htsget` (ticket
// and record URLs fetched) and `errors` (page errors). Exit status 1 when the page fails.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [pageUrl, chr, start, end, screenshot] = process.argv.slice(2);
const origin = new URL(pageUrl).origin;
const profile = mkdtempSync(join(tmpdir(), "bams3-viewer-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1200, height: 800 },
});
const report = { count: null, downsampled: null, foreign: [], htsget: 0, errors: [] };
let status = 0;
try {
  const page = context.pages()[0] || await context.newPage();
  page.on("request", (r) => {
    const u = r.url();
    if (u.startsWith("blob:") || u.startsWith("data:")) return;
    if (!u.startsWith(origin + "/")) report.foreign.push(u);
    else if (/\/(reads|data)\//.test(new URL(u).pathname)) report.htsget++;
  });
  page.on("pageerror", (e) => report.errors.push(String(e)));
  await page.goto(pageUrl, { waitUntil: "load", timeout: 60000 });
  // What the alignment track's viewport drew, once its load is over (null before).
  await page.evaluate(async () => {
    const browser = await window.bams3Viewer;
    window.loadedAlignments = () => {
      const track = browser.findTracks((t) => t.type === "alignment")[0];
      const vp = track && track.trackView.viewports[0];
      return vp && !vp.loading && vp.featureCache ? vp.featureCache.features || null : null;
    };
  });
  await page.waitForFunction(() => window.loadedAlignments() !== null, null, { timeout: 60000, polling: 100 });
  Object.assign(report, await page.evaluate(([chr, s, e]) => {
    const c = window.loadedAlignments();
    // samtools' rule: a read overlaps when it starts before the end and ends after the start,
    // a read covering no reference base counting as one base long.
    const overlap = (a) => a.chr === chr && a.start < e && Math.max(a.end, a.start + 1) > s;
    return {
      count: c.allAlignments().filter(overlap).length,
      downsampled: c.downsampledIntervals.reduce((n, d) => n + d.counts, 0),
    };
  }, [chr, Number(start), Number(end)]));
  await page.screenshot({ path: screenshot, fullPage: true });
} catch (e) {
  report.errors.push(String(e));
  status = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(report));
process.exit(status);
