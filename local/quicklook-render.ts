/**
 * Renders one global field as a PNG map: equirectangular (-180..180), Natural Earth coastlines
 * from world-atlas, a colour bar with ticks and a title. Text uses the "Seven plus" pixel font of
 * js-pixel-fonts so the output does not depend on the fonts installed on the machine.
 */
import { readFileSync } from "node:fs";
import { PNG } from "pngjs";
import { feature } from "topojson-client";
import type { Topology, GeometryCollection } from "topojson-specification";
// js-pixel-fonts ships CommonJS and its own typings.
import { fonts, renderPixels } from "js-pixel-fonts";

export const MAP_WIDTH = 960;
export const MAP_HEIGHT = 480;
const MARGIN = 20;
const TITLE_HEIGHT = 66;
const BAR_HEIGHT = 16;
const BAR_AREA = 64;
export const IMAGE_WIDTH = MAP_WIDTH + 2 * MARGIN;
export const IMAGE_HEIGHT = TITLE_HEIGHT + MAP_HEIGHT + BAR_AREA;

type Rgb = [number, number, number];
export type ColourScheme = "turbo" | "viridis" | "rdbu" | "blues";

export interface MapField {
  /** Row-major [lat.length × lon.length] values, already in display units. */
  values: Float32Array;
  /** Latitudes of the rows, descending or ascending, evenly spaced. */
  lat: ArrayLike<number>;
  /** Longitudes of the columns (degrees east, any origin), evenly spaced, covering the globe. */
  lon: ArrayLike<number>;
}

export interface MapStyle {
  /** Title lines, drawn top-left. */
  title: string[];
  units: string;
  scheme: ColourScheme;
  /** Colour range; when omitted, the 1st and 99th percentiles of the finite values. */
  range?: [number, number];
}

export interface Ticks {
  values: number[];
  format: (value: number) => string;
}

/** d3 modules are ESM-only: load them once with a real dynamic import. */
async function loadD3() {
  const [chromatic, scale] = await Promise.all([import("d3-scale-chromatic"), import("d3-scale")]);
  return { chromatic, scale };
}

export async function renderMapPng(field: MapField, style: MapStyle): Promise<Buffer> {
  const { chromatic, scale } = await loadD3();
  const nLat = field.lat.length;
  const nLon = field.lon.length;
  if (nLat < 2 || nLon < 2) throw new Error(`quick-look needs at least a 2×2 grid, got ${nLat}×${nLon}`);
  if (field.values.length !== nLat * nLon) throw new Error(`field has ${field.values.length} values, grid is ${nLat}×${nLon}`);
  const [low, high] = style.range ?? robustRange(field.values);
  const interpolate = {
    turbo: chromatic.interpolateTurbo,
    viridis: chromatic.interpolateViridis,
    rdbu: (t: number) => chromatic.interpolateRdBu(1 - t),
    blues: chromatic.interpolateBlues,
  }[style.scheme];
  const palette = buildPalette(interpolate);
  const linear = scale.scaleLinear().domain([low, high]);
  const ticks: Ticks = { values: linear.ticks(6), format: linear.tickFormat(6) };

  const png = new PNG({ width: IMAGE_WIDTH, height: IMAGE_HEIGHT });
  fill(png, [255, 255, 255]);
  drawField(png, field, palette, low, high);
  drawCoastlines(png, coastlines());
  drawFrame(png, MARGIN, TITLE_HEIGHT, MAP_WIDTH, MAP_HEIGHT, [0, 0, 0]);
  style.title.forEach((line, i) => drawText(png, line, MARGIN, 8 + i * 19, 2, [0, 0, 0]));
  drawColourBar(png, palette, low, high, ticks, style.units);
  return PNG.sync.write(png);
}

/** 1st and 99th percentile of the finite values (a flat field gets a ±1 range around its value). */
export function robustRange(values: Float32Array): [number, number] {
  const finite = Float32Array.from(values.filter(Number.isFinite)).sort();
  if (finite.length === 0) return [0, 1];
  const at = (q: number) => finite[Math.min(finite.length - 1, Math.floor(q * (finite.length - 1)))];
  const [low, high] = [at(0.01), at(0.99)];
  return low === high ? [low - 1, high + 1] : [low, high];
}

function buildPalette(interpolate: (t: number) => string): Rgb[] {
  return Array.from({ length: 256 }, (_, i) => parseRgb(interpolate(i / 255)));
}

function parseRgb(colour: string): Rgb {
  const rgb = /^rgb\((\d+),\s*(\d+),\s*(\d+)\)$/.exec(colour);
  if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
  if (hex) return [parseInt(hex[1], 16), parseInt(hex[2], 16), parseInt(hex[3], 16)];
  throw new Error(`unexpected colour from d3-scale-chromatic: ${colour}`);
}

/** Bilinear sampling of the grid at every map pixel centre (longitude wraps around). */
function drawField(png: PNG, field: MapField, palette: Rgb[], low: number, high: number) {
  const nLat = field.lat.length;
  const nLon = field.lon.length;
  const lat0 = field.lat[0];
  const dLat = (field.lat[nLat - 1] - lat0) / (nLat - 1);
  const lon0 = field.lon[0];
  const dLon = (field.lon[nLon - 1] - lon0) / (nLon - 1);
  const span = high - low || 1;
  for (let y = 0; y < MAP_HEIGHT; y++) {
    const lat = 90 - ((y + 0.5) / MAP_HEIGHT) * 180;
    const rowF = Math.min(nLat - 1, Math.max(0, (lat - lat0) / dLat));
    const r0 = Math.floor(rowF);
    const r1 = Math.min(nLat - 1, r0 + 1);
    const fr = rowF - r0;
    for (let x = 0; x < MAP_WIDTH; x++) {
      const lon = -180 + ((x + 0.5) / MAP_WIDTH) * 360;
      const colF = (((lon - lon0) / dLon) % nLon + nLon) % nLon;
      const c0 = Math.floor(colF) % nLon;
      const c1 = (c0 + 1) % nLon;
      const fc = colF - Math.floor(colF);
      const v =
        (1 - fr) * ((1 - fc) * field.values[r0 * nLon + c0] + fc * field.values[r0 * nLon + c1]) +
        fr * ((1 - fc) * field.values[r1 * nLon + c0] + fc * field.values[r1 * nLon + c1]);
      const colour: Rgb = Number.isFinite(v) ? palette[Math.round(Math.min(1, Math.max(0, (v - low) / span)) * 255)] : [160, 160, 160];
      setPixel(png, MARGIN + x, TITLE_HEIGHT + y, colour);
    }
  }
}

type Line = [number, number][];
let coastlineCache: Line[] | undefined;

/** Coastlines (land outlines, 1:50m) from world-atlas, as lon/lat polylines. */
function coastlines(): Line[] {
  if (coastlineCache) return coastlineCache;
  const topology = JSON.parse(readFileSync(require.resolve("world-atlas/land-50m.json"), "utf8")) as Topology<{ land: GeometryCollection }>;
  const land = feature(topology, topology.objects.land);
  const lines: Line[] = [];
  for (const f of land.features) {
    const geometry = f.geometry;
    const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.type === "MultiPolygon" ? geometry.coordinates : [];
    for (const polygon of polygons) for (const ring of polygon) lines.push(ring as Line);
  }
  coastlineCache = lines;
  return lines;
}

function drawCoastlines(png: PNG, lines: Line[]) {
  const toPixel = ([lon, lat]: [number, number]): [number, number] => [MARGIN + ((lon + 180) / 360) * MAP_WIDTH, TITLE_HEIGHT + ((90 - lat) / 180) * MAP_HEIGHT];
  for (const line of lines) {
    for (let i = 1; i < line.length; i++) {
      // Segments that wrap across the antimeridian would cross the whole map.
      if (Math.abs(line[i][0] - line[i - 1][0]) > 180) continue;
      drawLine(png, toPixel(line[i - 1]), toPixel(line[i]), [20, 20, 20]);
    }
  }
}

function drawColourBar(png: PNG, palette: Rgb[], low: number, high: number, ticks: Ticks, units: string) {
  const barWidth = Math.round(MAP_WIDTH * 0.6);
  const x0 = MARGIN + Math.round((MAP_WIDTH - barWidth) / 2);
  const y0 = TITLE_HEIGHT + MAP_HEIGHT + 14;
  for (let x = 0; x < barWidth; x++) {
    const colour = palette[Math.round((x / (barWidth - 1)) * 255)];
    for (let y = 0; y < BAR_HEIGHT; y++) setPixel(png, x0 + x, y0 + y, colour);
  }
  drawFrame(png, x0, y0, barWidth, BAR_HEIGHT, [0, 0, 0]);
  for (const value of ticks.values) {
    const x = x0 + Math.round(((value - low) / (high - low)) * (barWidth - 1));
    for (let y = 0; y < 5; y++) setPixel(png, x, y0 + BAR_HEIGHT + y, [0, 0, 0]);
    const label = ticks.format(value).replace("−", "-");
    drawText(png, label, x - Math.round(textWidth(label, 1) / 2), y0 + BAR_HEIGHT + 8, 1, [0, 0, 0]);
  }
  drawText(png, units, x0 + barWidth + 12, y0 + 1, 2, [0, 0, 0]);
}

function textWidth(text: string, scale: number): number {
  const rows = renderPixels(text, fonts.sevenPlus);
  return (rows[0]?.length ?? 0) * scale;
}

function drawText(png: PNG, text: string, x: number, y: number, scale: number, colour: Rgb) {
  const rows = renderPixels(text, fonts.sevenPlus);
  rows.forEach((row, ry) =>
    row.forEach((on, rx) => {
      if (!on) return;
      for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) setPixel(png, x + rx * scale + dx, y + ry * scale + dy, colour);
    }),
  );
}

function drawLine(png: PNG, [xa, ya]: [number, number], [xb, yb]: [number, number], colour: Rgb) {
  const steps = Math.max(1, Math.ceil(Math.max(Math.abs(xb - xa), Math.abs(yb - ya))));
  for (let i = 0; i <= steps; i++) {
    const x = Math.round(xa + ((xb - xa) * i) / steps);
    const y = Math.round(ya + ((yb - ya) * i) / steps);
    if (x >= MARGIN && x < MARGIN + MAP_WIDTH && y >= TITLE_HEIGHT && y < TITLE_HEIGHT + MAP_HEIGHT) setPixel(png, x, y, colour);
  }
}

function drawFrame(png: PNG, x: number, y: number, width: number, height: number, colour: Rgb) {
  for (let i = -1; i <= width; i++) {
    setPixel(png, x + i, y - 1, colour);
    setPixel(png, x + i, y + height, colour);
  }
  for (let j = -1; j <= height; j++) {
    setPixel(png, x - 1, y + j, colour);
    setPixel(png, x + width, y + j, colour);
  }
}

function fill(png: PNG, colour: Rgb) {
  for (let i = 0; i < png.width * png.height; i++) {
    png.data[i * 4] = colour[0];
    png.data[i * 4 + 1] = colour[1];
    png.data[i * 4 + 2] = colour[2];
    png.data[i * 4 + 3] = 255;
  }
}

function setPixel(png: PNG, x: number, y: number, [r, g, b]: Rgb) {
  if (x < 0 || y < 0 || x >= png.width || y >= png.height) return;
  const i = (y * png.width + x) * 4;
  png.data[i] = r;
  png.data[i + 1] = g;
  png.data[i + 2] = b;
  png.data[i + 3] = 255;
}
