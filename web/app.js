// baimo chat page: streams answers from /v1/chat/completions (fetch + SSE parsing), renders
// them with a small safe Markdown renderer (everything escaped first), keeps conversations on
// the server (/api/conversations), and speaks Chinese or English. Enter sends only when no
// IME composition is in progress (isComposing / keyCode 229), so Chinese input is safe.
'use strict';

const I18N = {
  en: {
    newChat: 'New chat', settings: 'Settings', model: 'Model', system: 'System prompt',
    temperature: 'Temperature', topP: 'Top P', maxTokens: 'Max tokens', apiKey: 'API key',
    send: 'Send', stop: 'Stop', placeholder: 'Message (Enter to send, Shift+Enter for a new line)',
    untitled: 'New conversation', del: 'Delete', error: 'Error', lang: '中文',
  },
  zh: {
    newChat: '新对话', settings: '设置', model: '模型', system: '系统提示词',
    temperature: '温度', topP: 'Top P', maxTokens: '最大长度', apiKey: 'API 密钥',
    send: '发送', stop: '停止', placeholder: '输入消息（Enter 发送，Shift+Enter 换行）',
    untitled: '新对话', del: '删除', error: '错误', lang: 'English',
  },
};

const $ = (id) => document.getElementById(id);
const state = {
  lang: (localStorage.getItem('baimo.lang') ||
         ((navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en')),
  convId: null, messages: [], controller: null, busy: false,
};
const t = (k) => (I18N[state.lang] || I18N.en)[k] || k;

function applyLang() {
  document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]'))
    el.placeholder = t(el.dataset.i18nPlaceholder);
  $('lang').textContent = t('lang');
}

// ---- Markdown (safe: input is HTML-escaped before any markup is added) -----------------

function esc(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const KEYWORDS = new Set(('if else for while do return function const let var class def import ' +
  'from as in of new try catch finally throw switch case break continue struct int char void ' +
  'float double static return fn pub use mut match impl true false null None True False self ' +
  'this async await yield lambda with pass elif not and or include typedef enum sizeof')
  .split(' '));

function highlight(code) {
  // tokens: comments, strings, numbers, words; each escaped separately
  const re = /(\/\/[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/)|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_]\w*)/g;
  let out = '', last = 0, m;
  while ((m = re.exec(code))) {
    out += esc(code.slice(last, m.index));
    if (m[1]) out += '<span class="tok-com">' + esc(m[1]) + '</span>';
    else if (m[2]) out += '<span class="tok-str">' + esc(m[2]) + '</span>';
    else if (m[3]) out += '<span class="tok-num">' + m[3] + '</span>';
    else if (KEYWORDS.has(m[4])) out += '<span class="tok-kw">' + m[4] + '</span>';
    else out += esc(m[4]);
    last = re.lastIndex;
  }
  return out + esc(code.slice(last));
}

function inline(s) {
  // s is raw text; code spans are cut out first so their content is not formatted
  const parts = s.split(/(`[^`\n]+`)/);
  return parts.map((p, i) => {
    if (i % 2) return '<code>' + esc(p.slice(1, -1)) + '</code>';
    let h = esc(p);
    h = h.replace(/\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g,
      (_, txt, url) => '<a href="' + url + '" target="_blank" rel="noopener noreferrer">' +
        txt + '</a>');
    h = h.replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
    h = h.replace(/(^|[^*\w])\*([^*\n]+)\*(?!\w)/g, '$1<em>$2</em>');
    h = h.replace(/(^|[^_\w])_([^_\n]+)_(?!\w)/g, '$1<em>$2</em>');
    return h;
  }).join('');
}

function renderMarkdown(src) {
  const lines = src.replace(/\r\n/g, '\n').split('\n');
  let html = '', para = [], list = null, i = 0;
  const flushPara = () => {
    if (para.length) html += '<p>' + para.map(inline).join('<br>') + '</p>';
    para = [];
  };
  const flushList = () => { if (list) { html += '</' + list + '>'; list = null; } };
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*```\s*([\w+-]*)\s*$/);
    if (fence) {
      flushPara(); flushList();
      const body = [];
      i++;
      while (i < lines.length && !/^\s*```\s*$/.test(lines[i])) body.push(lines[i++]);
      i++; // closing fence (or end of a still-streaming answer)
      const lang = fence[1] ? ' class="lang-' + esc(fence[1]) + '"' : '';
      html += '<pre><code' + lang + '>' + highlight(body.join('\n')) + '</code></pre>';
      continue;
    }
    const h = line.match(/^(#{1,6})\s+(.*)$/);
    const ul = line.match(/^\s*[-*+]\s+(.*)$/);
    const ol = line.match(/^\s*\d+[.)]\s+(.*)$/);
    if (h) {
      flushPara(); flushList();
      const n = h[1].length;
      html += '<h' + n + '>' + inline(h[2]) + '</h' + n + '>';
    } else if (ul || ol) {
      flushPara();
      const kind = ul ? 'ul' : 'ol';
      if (list !== kind) { flushList(); html += '<' + kind + '>'; list = kind; }
      html += '<li>' + inline((ul || ol)[1]) + '</li>';
    } else if (!line.trim()) {
      flushPara(); flushList();
    } else {
      flushList();
      para.push(line);
    }
    i++;
  }
  flushPara(); flushList();
  return html;
}

// ---- server calls ------------------------------------------------------------------------

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = $('api_key').value.trim();
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

async function api(method, path, body) {
  const r = await fetch(path, { method, headers: headers(),
    body: body ? JSON.stringify(body) : undefined });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((j.error && j.error.message) || r.statusText);
  return j;
}

function showError(msg) {
  const e = $('error');
  e.textContent = t('error') + ': ' + msg;
  e.hidden = !msg;
}

async function loadModels() {
  try {
    const j = await api('GET', '/v1/models');
    const sel = $('model');
    sel.innerHTML = '';
    for (const m of j.data) {
      const o = document.createElement('option');
      o.value = o.textContent = m.id;
      sel.appendChild(o);
    }
    const saved = localStorage.getItem('baimo.model');
    if (saved && j.data.some((m) => m.id === saved)) sel.value = saved;
  } catch (e) { showError(e.message); }
}

async function loadList() {
  let j;
  try { j = await api('GET', '/api/conversations'); } catch (e) { return; }
  const ul = $('conv-list');
  ul.innerHTML = '';
  for (const c of j.conversations) {
    const li = document.createElement('li');
    li.dataset.id = c.id;
    if (c.id === state.convId) li.className = 'active';
    const span = document.createElement('span');
    span.textContent = c.title || t('untitled');
    const del = document.createElement('button');
    del.textContent = '×';
    del.title = t('del');
    del.onclick = async (ev) => {
      ev.stopPropagation();
      await api('DELETE', '/api/conversations/' + c.id).catch((e) => showError(e.message));
      if (state.convId === c.id) newChat();
      loadList();
    };
    li.append(span, del);
    li.onclick = () => openConv(c.id);
    ul.appendChild(li);
  }
}

async function openConv(id) {
  if (state.busy) return;
  try {
    const c = await api('GET', '/api/conversations/' + id);
    state.convId = c.id;
    state.messages = c.messages;
    $('system').value = c.system || '';
    const s = c.settings || {};
    for (const k of ['temperature', 'top_p', 'max_tokens']) if (s[k] != null) $(k).value = s[k];
    if (c.model) $('model').value = c.model;
    localStorage.setItem('baimo.conv', c.id);
    renderAll();
    loadList();
  } catch (e) { showError(e.message); }
}

function newChat() {
  if (state.controller) state.controller.abort();
  state.convId = null;
  state.messages = [];
  localStorage.removeItem('baimo.conv');
  renderAll();
  loadList();
}

function settings() {
  return { temperature: Number($('temperature').value), top_p: Number($('top_p').value),
    max_tokens: Number($('max_tokens').value) };
}

async function saveConv() {
  const body = { title: (state.messages[0] && state.messages[0].content.slice(0, 40)) || '',
    model: $('model').value, system: $('system').value, settings: settings(),
    messages: state.messages };
  if (state.convId) {
    await api('PUT', '/api/conversations/' + state.convId, body);
  } else {
    const c = await api('POST', '/api/conversations', body);
    state.convId = c.id;
    localStorage.setItem('baimo.conv', c.id);
  }
  loadList();
}

// ---- messages ----------------------------------------------------------------------------

function msgEl(m) {
  const d = document.createElement('div');
  d.className = 'msg ' + m.role;
  if (m.role === 'user') d.textContent = m.content;
  else d.innerHTML = renderMarkdown(m.content);
  return d;
}

function renderAll() {
  const box = $('messages');
  box.innerHTML = '';
  for (const m of state.messages) box.appendChild(msgEl(m));
  box.scrollTop = box.scrollHeight;
}

// Reads an SSE body and calls onData for each `data:` payload.
async function readSSE(resp, onData) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k);
      buf = buf.slice(k + 2);
      const data = ev.split('\n').filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart()).join('\n');
      if (data) onData(data);
    }
  }
}

async function send(text) {
  if (state.busy || !text.trim()) return;
  showError('');
  state.busy = true;
  $('send').hidden = true;
  $('stop').hidden = false;
  state.messages.push({ role: 'user', content: text });
  const box = $('messages');
  box.appendChild(msgEl(state.messages[state.messages.length - 1]));
  const answer = { role: 'assistant', content: '' };
  const el = msgEl(answer);
  el.classList.add('streaming');
  box.appendChild(el);
  box.scrollTop = box.scrollHeight;
  const msgs = [];
  if ($('system').value.trim()) msgs.push({ role: 'system', content: $('system').value });
  for (const m of state.messages) msgs.push({ role: m.role, content: m.content });
  state.controller = new AbortController();
  try {
    const resp = await fetch('/v1/chat/completions', {
      method: 'POST', headers: headers(), signal: state.controller.signal,
      body: JSON.stringify(Object.assign({ model: $('model').value, messages: msgs,
        stream: true }, settings())),
    });
    if (!resp.ok) {
      const j = await resp.json().catch(() => ({}));
      throw new Error((j.error && j.error.message) || resp.statusText);
    }
    await readSSE(resp, (data) => {
      if (data === '[DONE]') return;
      const j = JSON.parse(data);
      if (j.error) throw new Error(j.error.message);
      const d = j.choices && j.choices[0] && j.choices[0].delta;
      if (d && d.content) {
        answer.content += d.content;
        el.innerHTML = renderMarkdown(answer.content);
        box.scrollTop = box.scrollHeight;
      }
    });
  } catch (e) {
    if (e.name !== 'AbortError') showError(e.message);
  } finally {
    el.classList.remove('streaming');
    state.messages.push(answer);
    state.controller = null;
    state.busy = false;
    $('send').hidden = false;
    $('stop').hidden = true;
    saveConv().catch((e) => showError(e.message));
  }
}

// ---- wiring ------------------------------------------------------------------------------

function init() {
  applyLang();
  $('lang').onclick = () => {
    state.lang = state.lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('baimo.lang', state.lang);
    applyLang();
    loadList();
  };
  $('api_key').value = localStorage.getItem('baimo.key') || '';
  $('api_key').onchange = () => {
    localStorage.setItem('baimo.key', $('api_key').value);
    loadModels();
    loadList();
  };
  $('model').onchange = () => localStorage.setItem('baimo.model', $('model').value);
  $('new-chat').onclick = newChat;
  $('stop').onclick = () => state.controller && state.controller.abort();
  $('composer').onsubmit = (ev) => {
    ev.preventDefault();
    const text = $('input').value;
    $('input').value = '';
    send(text);
  };
  $('input').addEventListener('keydown', (ev) => {
    // Enter while an IME is composing (Chinese pinyin etc.) confirms the composition: never send
    if (ev.key !== 'Enter' || ev.shiftKey || ev.isComposing || ev.keyCode === 229) return;
    ev.preventDefault();
    $('composer').requestSubmit();
  });
  loadModels().then(() => {
    const last = localStorage.getItem('baimo.conv');
    if (last) openConv(last); else loadList();
  });
}

init();
