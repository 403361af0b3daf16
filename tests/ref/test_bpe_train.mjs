// Tokenizer training against transformers.js: `baimo train-tokenizer` trains two byte-level BPE
// tokenizers on tests/ref/bpe_corpus.txt (min-count 2 and min-count 1), transformers.js
// (@huggingface/transformers, offline) loads each produced tokenizer.json + tokenizer_config.json,
// and on held-out mixed Chinese/English/code strings (not in the training text) baimo's ids must
// equal transformers.js encode(text, {add_special_tokens: false}) and both decodes must give the
// original text back. Also: the ChatML chat_template renders through transformers.js' Jinja.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { env, AutoTokenizer } from "@huggingface/transformers";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const BAIMO = process.env.BAIMO || path.join(root, "build", "baimo");
const tmp = fs.mkdtempSync(path.join(process.env.BAIMO_TMP || os.tmpdir(), "bpetrain-"));
const SEP = "\u0001\u0002SEP\u0002\u0001";

const heldOut = [
  "床前明月光，疑是地上霜。",
  "春风又绿江南岸，明月何时照我还？",
  "Hello, world! It's 2025 and we're training tokenizers.",
  "DON'T SHOUT; I'LL hear you. She'd've known.",
  "今天是2025年3月14日，气温23.5°C，适合出门。",
  "中文English混合123文本abc汉字def456",
  "def add(a, b):\n    return a + b  # 加法\n",
  "for (size_t i = 0; i < n; i++) { sum += x[i] * 2; }\n",
  "<|im_start|>user\n你好！请背诵《静夜思》。<|im_end|>\n<|im_start|>assistant\n",
  "<|endoftext|>新的文档开始了。<|endoftext|>",
  "  leading spaces\tand\ttabs\n\n\ntrailing   \n",
  "全角字符：ＡＢＣ１２３，标点！？；「引号」『书名』",
  "日本語のひらがなとカタカナ、한국어 문장도 있습니다.",
  "emoji 😀👍🏽 and symbols ∑∫√ ≤ ≥ → ← ©®",
  "罕见字：𠀀𠀁𪚥𫝀，叠字：人人々，数字〇一二三。",
  "café naïve résumé Ωmega ß straße",
  "a\r\nb\rc\n\r\nd",
  "1234567890 12 123 1234 00001",
  "https://example.com/path?q=北京&lang=zh-CN#section-2",
  "",
  " ",
  "x",
];

env.allowRemoteModels = false;
env.localModelPath = tmp;

let failed = 0;
for (const [name, minCount, vocab] of [["mc2", "2", "700"], ["mc1", "1", "1200"]]) {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  execFileSync(BAIMO, ["train-tokenizer", "-f", path.join(here, "bpe_corpus.txt"), "--vocab", vocab,
    "--min-count", minCount, "-o", dir], { stdio: ["ignore", "ignore", "pipe"] });
  const tj = path.join(dir, "tokenizer.json");
  const nMerges = JSON.parse(fs.readFileSync(tj, "utf8")).model.merges.length;
  const hf = await AutoTokenizer.from_pretrained(name, { local_files_only: true });
  const inp = path.join(tmp, `${name}.txt`);
  fs.writeFileSync(inp, heldOut.join(SEP));
  const out = execFileSync(BAIMO, ["tokenize", "--tokenizer", tj, "-f", inp, "--no-special",
    "--split", SEP], { maxBuffer: 1 << 26 }).toString();
  // --split drops an empty last piece; pad to the corpus length
  const lines = out.split("\n");
  const got = heldOut.map((_, i) => (lines[i] === undefined || lines[i].trim() === "" ? []
    : lines[i].trim().split(" ").map(Number)));
  const want = heldOut.map((s) => hf.encode(s, { add_special_tokens: false }));
  const idsFile = path.join(tmp, `${name}.ids`);
  fs.writeFileSync(idsFile, want.map((w) => w.join(" ")).join("\n") + "\n");
  const dec = execFileSync(BAIMO, ["detokenize", "--tokenizer", tj, "--ids-file", idsFile,
    "--split", SEP], { maxBuffer: 1 << 26 }).toString().split(SEP);
  let okIds = 0, okDec = 0, nTok = 0;
  heldOut.forEach((s, i) => {
    nTok += want[i].length;
    const a = JSON.stringify(got[i]), b = JSON.stringify(want[i]);
    if (a === b) okIds++;
    else console.log(`${name} ids differ for ${JSON.stringify(s)}\n  hf    ${b}\n  baimo ${a}`);
    const hfText = want[i].length ? hf.decode(want[i], { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "";
    if (hfText === s && (dec[i] ?? "") === s) okDec++;
    else console.log(`${name} decode differs for ${JSON.stringify(s)}\n  hf    ${JSON.stringify(hfText)}\n  baimo ${JSON.stringify(dec[i])}`);
  });
  // special tokens are single ids in both
  const sp = hf.encode("<|im_start|><|im_end|><|endoftext|>", { add_special_tokens: false });
  const spOk = sp.length === 3;
  if (!spOk) console.log(`${name}: special tokens not atomic in transformers.js: ${sp}`);
  // the chat template renders ChatML
  const chat = hf.apply_chat_template([{ role: "user", content: "你好" }, { role: "assistant", content: "您好！" }],
    { tokenize: false, add_generation_prompt: true });
  const chatWant = "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n您好！<|im_end|>\n<|im_start|>assistant\n";
  const chatOk = chat === chatWant;
  if (!chatOk) console.log(`${name}: chat template gave ${JSON.stringify(chat)}`);
  console.log(`${name}: ${nMerges} merges; ids ${okIds}/${heldOut.length}, decode ${okDec}/${heldOut.length} (${nTok} tokens), specials ${spOk ? "atomic" : "SPLIT"}, chat template ${chatOk ? "ok" : "WRONG"}`);
  if (okIds !== heldOut.length || okDec !== heldOut.length || !spOk || !chatOk || nMerges < 100) failed++;
}
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
