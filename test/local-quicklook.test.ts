import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { PNG } from "pngjs";
import { CHANNEL_NAMES, encodeForecastStep } from "../runtime/src/netcdf";
import { startLocalS3 } from "../tools/local-s3";
import { chooseLeads, localStepSource, renderQuicklooks, s3StepSource } from "../local/quicklook";
import { IMAGE_HEIGHT, IMAGE_WIDTH, MAP_HEIGHT, MAP_WIDTH } from "../local/quicklook-render";

const LAT = Float64Array.from({ length: 19 }, (_, i) => 90 - i * 10);
const LON = Float64Array.from({ length: 36 }, (_, j) => j * 10);
const INIT = new Date("2023-10-12T06:00:00Z");

/** A step whose T2M is 250 K north of the equator and 300 K south of it; other channels vary smoothly. */
async function stepBytes(leadHours: number): Promise<Uint8Array> {
  const cells = LAT.length * LON.length;
  const data = new Float32Array(CHANNEL_NAMES.length * cells);
  for (let c = 0; c < CHANNEL_NAMES.length; c++)
    for (let i = 0; i < LAT.length; i++)
      for (let j = 0; j < LON.length; j++) {
        const value = CHANNEL_NAMES[c] === "t2m" ? (LAT[i] > 0 ? 250 : LAT[i] < 0 ? 300 : 275) : 1000 + c + 10 * Math.sin((LON[j] * Math.PI) / 180) + leadHours;
        data[c * cells + i * LON.length + j] = value;
      }
  return encodeForecastStep({ initTime: INIT, leadHours, levels: [...CHANNEL_NAMES], lat: LAT, lon: LON, data, compression: "none" });
}

function mapPixel(png: PNG, lon: number, lat: number): [number, number, number] {
  const x = 20 + Math.floor(((lon + 180) / 360) * MAP_WIDTH);
  const y = 66 + Math.floor(((90 - lat) / 180) * MAP_HEIGHT);
  const i = (y * png.width + x) * 4;
  return [png.data[i], png.data[i + 1], png.data[i + 2]];
}

describe("local quick-look maps", function () {
  let folder: string;
  before(async () => {
    folder = await mkdtemp(join(tmpdir(), "fuxi-quicklook-"));
    for (const lead of [6, 12, 18, 24, 30]) await writeFile(join(folder, `${String(lead).padStart(3, "0")}.nc`), await stepBytes(lead));
    await writeFile(join(folder, "_SUCCESS"), "{}");
  });
  after(async () => { await rm(folder, { recursive: true, force: true }); });

  it("chooses the nearest available lead for each wanted one", () => {
    assert.deepEqual(chooseLeads([6, 12, 18, 24, 30], [24, 120, 240, 360]), [24, 30]);
    assert.deepEqual(chooseLeads([6, 12, 18], [24]), [18]);
    assert.deepEqual(chooseLeads([6, 18], [12]), [6], "ties go to the earlier lead");
    assert.deepEqual(chooseLeads([], [24]), []);
  });

  it("renders T2M, Z500, MSL and TP maps of the expected size, with the field where it belongs", async () => {
    const outDir = join(folder, "quicklook");
    const images = await renderQuicklooks({ source: localStepSource(folder), outDir, leads: [6, 24], note: "SYNTHETIC input" });
    assert.deepEqual(images.map((i) => `${i.variable}@${i.leadHours}`), ["t2m@6", "t2m@24", "z500@6", "z500@24", "msl@6", "msl@24", "tp@6", "tp@24"]);
    for (const image of images) {
      const png = PNG.sync.read(await readFile(image.file));
      assert.equal(png.width, IMAGE_WIDTH);
      assert.equal(png.height, IMAGE_HEIGHT);
      const colours = new Set<number>();
      for (let i = 0; i < png.data.length; i += 4) colours.add((png.data[i] << 16) | (png.data[i + 1] << 8) | png.data[i + 2]);
      assert.ok(colours.size > 20, `${image.file} looks blank (${colours.size} colours)`);
    }
    // Cold north and warm south land on opposite ends of the turbo palette (open Pacific, away from coastlines).
    const t2m = PNG.sync.read(await readFile(join(outDir, "t2m_006h.png")));
    const north = mapPixel(t2m, -150, 45);
    const south = mapPixel(t2m, -150, -45);
    assert.deepEqual(north, [35, 23, 27], "turbo(0) in the cold hemisphere");
    assert.deepEqual(south, [144, 12, 0], "turbo(1) in the warm hemisphere");
    // Title text is drawn (black pixels in the title band), and coastlines cross the map (e.g. around Africa).
    let titleInk = 0;
    for (let y = 0; y < 60; y++) for (let x = 0; x < 600; x++) if (t2m.data[(y * t2m.width + x) * 4] === 0) titleInk++;
    assert.ok(titleInk > 200, `title band has ${titleInk} ink pixels`);
    let coast = 0;
    for (let x = 0; x < MAP_WIDTH; x++) {
      const i = ((66 + Math.floor((90 - 0) / 180 * MAP_HEIGHT)) * t2m.width + 20 + x) * 4;
      if (t2m.data[i] === 20 && t2m.data[i + 1] === 20 && t2m.data[i + 2] === 20) coast++;
    }
    assert.ok(coast >= 6, `the equator row should cross coastlines, found ${coast} coastline pixels`);
  });

  it("scales colours per map by default, and across leads with sharedRange", async () => {
    // Z500 at +6 h and +24 h differ by a constant (18 units): per-map ranges draw the same map
    // (up to float rounding at palette boundaries), a shared range draws them in different colours.
    const differingPixels = async (dir: string) => {
      const [a, b] = await Promise.all(["006", "024"].map(async (lead) => PNG.sync.read(await readFile(join(dir, `z500_${lead}h.png`)))));
      let differing = 0;
      for (let y = 66; y < 66 + MAP_HEIGHT; y++)
        for (let x = 20; x < 20 + MAP_WIDTH; x++) {
          const i = (y * a.width + x) * 4;
          if (Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) + Math.abs(a.data[i + 2] - b.data[i + 2]) > 12) differing++;
        }
      return differing / (MAP_WIDTH * MAP_HEIGHT);
    };
    const own = join(folder, "own-range");
    await renderQuicklooks({ source: localStepSource(folder), outDir: own, leads: [6, 24] });
    const shared = join(folder, "shared-range");
    await renderQuicklooks({ source: localStepSource(folder), outDir: shared, leads: [6, 24], sharedRange: true });
    const [ownDiff, sharedDiff] = [await differingPixels(own), await differingPixels(shared)];
    assert.ok(ownDiff < 0.01, `per-map ranges: ${(ownDiff * 100).toFixed(2)}% of map pixels differ`);
    assert.ok(sharedDiff > 0.5, `shared range: only ${(sharedDiff * 100).toFixed(2)}% of map pixels differ`);
  });

  it("reads the steps from S3 as well", async () => {
    const s3 = await startLocalS3({ buckets: ["ql"] });
    try {
      await s3.client.send(new PutObjectCommand({ Bucket: "ql", Key: "output/2023101206/024.nc", Body: await stepBytes(24) }));
      await s3.client.send(new PutObjectCommand({ Bucket: "ql", Key: "output/2023101206/_transform/x.json.out", Body: "{}" }));
      const source = s3StepSource(s3.client, "s3://ql/output/2023101206");
      assert.deepEqual(await source.leads(), [24]);
      const images = await renderQuicklooks({ source, outDir: join(folder, "from-s3"), variables: undefined });
      assert.equal(images.length, 4);
      assert.ok(images.every((i) => i.leadHours === 24));
    } finally {
      await s3.stop();
    }
  });

  it("names the folder when there is nothing to draw, and the file when it is not a forecast step", async () => {
    const empty = await mkdtemp(join(tmpdir(), "fuxi-quicklook-empty-"));
    try {
      await assert.rejects(renderQuicklooks({ source: localStepSource(empty), outDir: join(empty, "q") }), new RegExp(`no forecast steps \\(NNN\\.nc\\) in ${empty}`));
      await writeFile(join(empty, "024.nc"), "not netcdf");
      await assert.rejects(renderQuicklooks({ source: localStepSource(empty), outDir: join(empty, "q") }), /024\.nc: not a readable FuXi forecast step/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
