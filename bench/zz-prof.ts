import { getBinding } from "../src/binding.ts";
import { BatchWriter } from "../src/batch.ts";
import { makeFixture } from "./fixtures.ts";
const b = getBinding();
const fx = makeFixture((process.argv[2] ?? "basic") as never);
const w = new BatchWriter(b.native);
const t0 = performance.now();
while (performance.now() - t0 < 4000) w.write(fx.ours);
process.exit(0);
