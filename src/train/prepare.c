/* Data preparation for training: documents (whole files, or the "text" field of each .jsonl
 * line) tokenized into train/val shards with EOS between documents, exact-duplicate removal
 * by a hash of the normalized text, and a deterministic validation split by another hash;
 * chat data (OpenAI-style {"messages": [...]} lines) rendered with the tokenizer's chat
 * template and a loss mask that is 1 exactly on the tokens of assistant turns. */
#include "train/train_int.h"

#include "baimo/template.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
    uint32_t *tok;
    uint8_t *mask;
    size_t n, cap;
} buf;

static bm_status push(buf *b, const int32_t *ids, size_t n, uint8_t m, bm_err *err) {
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + n) c *= 2;
        uint32_t *t = realloc(b->tok, c * 4);
        if (t) b->tok = t;
        uint8_t *mm = t ? realloc(b->mask, c) : NULL;
        if (!t || !mm) return bm_err_set(err, BM_ENOMEM, "data: out of memory at %zu tokens", b->n);
        b->mask = mm;
        b->cap = c;
    }
    for (size_t i = 0; i < n; i++) {
        b->tok[b->n + i] = (uint32_t)ids[i];
        b->mask[b->n + i] = m;
    }
    b->n += n;
    return BM_OK;
}

static bm_status encode(const bm_tok *t, const char *s, size_t len, int flags, int32_t **ids,
                        size_t *cap, size_t *n, bm_err *err) {
    for (;;) {
        bm_status st = bm_tok_encode(t, s, len, flags, *ids, *cap, n, err);
        if (st) return st;
        if (*n <= *cap) return BM_OK;
        int32_t *p = realloc(*ids, *n * sizeof(int32_t));
        if (!p) return bm_err_set(err, BM_ENOMEM, "data: out of memory encoding %zu bytes", len);
        *ids = p;
        *cap = *n;
    }
}

/* FNV-1a over the normalized text: ASCII lower-cased, whitespace runs as one space, trimmed. */
static uint64_t norm_hash(const char *s, size_t n, uint64_t basis) {
    uint64_t h = basis;
    bool space = false, any = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isspace(c)) {
            space = any;
            continue;
        }
        if (space) h = (h ^ ' ') * 0x100000001b3ull;
        space = false;
        any = true;
        h = (h ^ (uint64_t)tolower(c)) * 0x100000001b3ull;
    }
    return h;
}

typedef struct hset {
    uint64_t *k;
    size_t n, cap;
} hset;

/* true when h was new */
static bool hset_add(hset *s, uint64_t h) {
    if (h == 0) h = 1;
    if (2 * (s->n + 1) > s->cap) {
        size_t c = s->cap ? s->cap * 2 : 1024;
        uint64_t *k = calloc(c, sizeof *k);
        if (!k) return true;
        for (size_t i = 0; i < s->cap; i++)
            if (s->k[i])
                for (size_t j = s->k[i] & (c - 1);; j = (j + 1) & (c - 1))
                    if (!k[j]) {
                        k[j] = s->k[i];
                        break;
                    }
        free(s->k);
        s->k = k;
        s->cap = c;
    }
    for (size_t j = h & (s->cap - 1);; j = (j + 1) & (s->cap - 1)) {
        if (s->k[j] == h) return false;
        if (!s->k[j]) {
            s->k[j] = h;
            s->n++;
            return true;
        }
    }
}

typedef struct prep {
    const bm_tok *tok;
    double val_frac;
    bm_prep_stats *st;
    buf train, val;
    hset seen;
    int32_t *ids;
    size_t ids_cap;
} prep;

static bool to_val(const prep *p, const char *s, size_t n) {
    uint64_t h = norm_hash(s, n, 0x84222325cbf29ce4ull);
    return (double)(h >> 11) / 9007199254740992.0 < p->val_frac;
}

static bm_status add_doc(prep *p, const char *s, size_t n, bm_err *err) {
    p->st->n_docs++;
    if (!hset_add(&p->seen, norm_hash(s, n, 0xcbf29ce484222325ull))) {
        p->st->n_dups++;
        return BM_OK;
    }
    bool v = to_val(p, s, n);
    buf *b = v ? &p->val : &p->train;
    size_t k;
    bm_status st = encode(p->tok, s, n, 0, &p->ids, &p->ids_cap, &k, err);
    if (st) return st;
    if ((st = push(b, p->ids, k, 1, err))) return st;
    int32_t eos = bm_tok_eos(p->tok);
    if (eos >= 0 && (st = push(b, &eos, 1, 1, err))) return st;
    if (v) p->st->n_val_docs++;
    else p->st->n_train_docs++;
    return BM_OK;
}

static bm_status write_out(prep *p, const char *dir, bool masks, bm_err *err) {
    char path[4096];
    const buf *bs[2] = {&p->train, &p->val};
    const char *names[2] = {"train", "val"};
    for (int i = 0; i < 2; i++) {
        if (i == 1 && bs[1]->n == 0) continue;
        snprintf(path, sizeof path, "%s/%s_000.bin", dir, names[i]);
        bm_status st = bm_shard_write(path, bs[i]->tok, bs[i]->n,
                                      (uint32_t)bm_tok_n_vocab(p->tok), err);
        if (st) return st;
        if (masks) {
            snprintf(path, sizeof path, "%s/%s_000.mask", dir, names[i]);
            if ((st = bm_mask_write(path, bs[i]->mask, bs[i]->n, err))) return st;
        }
    }
    p->st->n_train_tokens = p->train.n;
    p->st->n_val_tokens = p->val.n;
    return BM_OK;
}

static void prep_fini(prep *p) {
    free(p->train.tok);
    free(p->train.mask);
    free(p->val.tok);
    free(p->val.mask);
    free(p->seen.k);
    free(p->ids);
}

/* Iterates the lines of a file's text, calling fn on each non-empty one. */
static bm_status each_line(const char *path, const char *data, size_t n,
                           bm_status (*fn)(prep *p, const char *path, size_t line, const char *s,
                                           size_t len, bm_err *err),
                           prep *p, bm_err *err) {
    size_t line = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && data[j] != '\n') j++;
        line++;
        if (j > i) {
            bm_status st = fn(p, path, line, data + i, j - i, err);
            if (st) return st;
        }
        i = j + 1;
    }
    return BM_OK;
}

static bm_status text_line(prep *p, const char *path, size_t line, const char *s, size_t len,
                           bm_err *err) {
    json_error_t je;
    json_t *j = json_loadb(s, len, 0, &je);
    const char *txt = j ? json_string_value(json_object_get(j, "text")) : NULL;
    if (!txt) {
        json_decref(j);
        return bm_err_set(err, BM_EFORMAT, "data: %s:%zu: expected a JSON object with a "
                          "\"text\" string%s%s", path, line, j ? "" : ": ", j ? "" : je.text);
    }
    bm_status st = add_doc(p, txt, json_string_length(json_object_get(j, "text")), err);
    json_decref(j);
    return st;
}

enum { MAX_FILE = 1 << 30 };

/* Splits a plain text into documents at lines equal to sep (the separators are dropped). */
static bm_status split_docs(prep *p, const char *data, size_t n, const char *sep, bm_err *err) {
    size_t sl = strlen(sep), start = 0;
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && data[j] != '\n') j++;
        bool is_sep = j - i == sl && !memcmp(data + i, sep, sl);
        if (is_sep || j >= n) {
            size_t end = is_sep ? i : n;
            while (end > start && (data[end - 1] == '\n' || data[end - 1] == '\r')) end--;
            if (end > start) {
                bm_status st = add_doc(p, data + start, end - start, err);
                if (st) return st;
            }
            start = j + 1;
        }
        if (j >= n) break;
        i = j + 1;
    }
    return BM_OK;
}

bm_status bm_data_prepare(const char *const *files, int n_files, const bm_tok *tok,
                          const char *dir, double val_frac, const char *doc_sep,
                          bm_prep_stats *stats, bm_err *err) {
    bm_prep_stats dummy;
    prep p = {.tok = tok, .val_frac = val_frac, .st = stats ? stats : &dummy};
    memset(p.st, 0, sizeof *p.st);
    bm_status st = BM_OK;
    for (int f = 0; f < n_files && !st; f++) {
        char *data;
        size_t n;
        if ((st = bm_file_read(files[f], &data, &n, MAX_FILE, err))) break;
        size_t l = strlen(files[f]);
        if (l > 6 && !strcmp(files[f] + l - 6, ".jsonl"))
            st = each_line(files[f], data, n, text_line, &p, err);
        else if (doc_sep)
            st = split_docs(&p, data, n, doc_sep, err);
        else
            st = add_doc(&p, data, n, err);
        free(data);
    }
    if (!st && p.train.n == 0)
        st = bm_err_set(err, BM_EINVAL, "data: no training tokens (%llu documents, %llu "
                        "duplicates, %llu for validation)", (unsigned long long)p.st->n_docs,
                        (unsigned long long)p.st->n_dups, (unsigned long long)p.st->n_val_docs);
    if (!st) st = write_out(&p, dir, false, err);
    prep_fini(&p);
    return st;
}

/* ---- chat (SFT) ------------------------------------------------------------------------- */

typedef struct chat {
    prep *p;
    bm_tmpl *tmpl;
    json_t *ctx;
} chat;

static bm_status render(chat *c, json_t *msgs, size_t upto, bool gen, char **out, bm_err *err) {
    json_t *slice = json_array();
    for (size_t i = 0; i < upto; i++) json_array_append(slice, json_array_get(msgs, i));
    json_object_set_new(c->ctx, "messages", slice);
    json_object_set_new(c->ctx, "add_generation_prompt", json_boolean(gen));
    size_t n;
    return bm_tmpl_render(c->tmpl, c->ctx, out, &n, err);
}

static bm_status chat_conv(chat *c, const char *path, size_t line, const char *s, size_t len,
                           bm_err *err) {
    prep *p = c->p;
    json_error_t je;
    json_t *j = json_loadb(s, len, 0, &je);
    json_t *msgs = j ? json_object_get(j, "messages") : NULL;
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        json_decref(j);
        return bm_err_set(err, BM_EFORMAT, "data: %s:%zu: expected {\"messages\": [...]} with "
                          "at least one message%s%s", path, line, j ? "" : ": ", j ? "" : je.text);
    }
    size_t nm = json_array_size(msgs);
    char *full = NULL, *pre = NULL, *upto = NULL;
    bm_status st = render(c, msgs, nm, false, &full, err);
    size_t covered = 0, nfull = full ? strlen(full) : 0;
    /* segments: [covered, start of assistant) unmasked, [start, end) masked */
    size_t seg_lo[256], seg_hi[256];
    uint8_t seg_m[256];
    int ns = 0;
    for (size_t i = 0; i < nm && !st; i++) {
        const char *role = json_string_value(json_object_get(json_array_get(msgs, i), "role"));
        if (!role) {
            st = bm_err_set(err, BM_EFORMAT, "data: %s:%zu: message %zu has no \"role\"", path,
                            line, i);
            break;
        }
        if (strcmp(role, "assistant")) continue;
        if ((st = render(c, msgs, i, true, &pre, err)) ||
            (st = render(c, msgs, i + 1, false, &upto, err)))
            break;
        size_t np = strlen(pre), nu = strlen(upto);
        if (np < covered || nu < np || nu > nfull || memcmp(upto, pre, np) ||
            memcmp(full, upto, nu)) {
            st = bm_err_set(err, BM_EUNSUPPORTED, "data: %s:%zu: the chat template does not "
                            "render message %zu as an extension of the earlier turns, so the "
                            "assistant tokens cannot be located", path, line, i);
            break;
        }
        if (ns + 2 > 254) {
            st = bm_err_set(err, BM_ERANGE, "data: %s:%zu: more than 127 assistant turns", path,
                            line);
            break;
        }
        seg_lo[ns] = covered, seg_hi[ns] = np, seg_m[ns++] = 0;
        seg_lo[ns] = np, seg_hi[ns] = nu, seg_m[ns++] = 1;
        covered = nu;
        free(pre);
        free(upto);
        pre = upto = NULL;
    }
    if (!st) {
        seg_lo[ns] = covered, seg_hi[ns] = nfull, seg_m[ns++] = 0;
        p->st->n_docs++;
        if (!hset_add(&p->seen, norm_hash(full, nfull, 0xcbf29ce484222325ull))) {
            p->st->n_dups++;
        } else {
            bool v = to_val(p, full, nfull);
            buf *b = v ? &p->val : &p->train;
            for (int k = 0; k < ns && !st; k++) {
                if (seg_hi[k] <= seg_lo[k]) continue;
                size_t n;
                st = encode(p->tok, full + seg_lo[k], seg_hi[k] - seg_lo[k], BM_TOK_PARSE_SPECIAL,
                            &p->ids, &p->ids_cap, &n, err);
                if (!st) st = push(b, p->ids, n, seg_m[k], err);
                if (seg_m[k] && !v) p->st->n_masked += n;
            }
            if (v) p->st->n_val_docs++;
            else p->st->n_train_docs++;
        }
    }
    free(pre);
    free(upto);
    free(full);
    json_decref(j);
    return st;
}

bm_status bm_data_prepare_chat(const char *jsonl, const bm_tok *tok, const char *dir,
                               double val_frac, bm_prep_stats *stats, bm_err *err) {
    const char *src = bm_tok_chat_template(tok);
    if (!src)
        return bm_err_set(err, BM_ENOTFOUND, "data: the tokenizer has no chat template "
                          "(tokenizer_config.json chat_template)");
    bm_prep_stats dummy;
    prep p = {.tok = tok, .val_frac = val_frac, .st = stats ? stats : &dummy};
    memset(p.st, 0, sizeof *p.st);
    chat c = {&p, NULL, json_object()};
    bm_status st = bm_tmpl_parse(src, strlen(src), &c.tmpl, err);
    size_t n;
    const char *t;
    int32_t bos = bm_tok_bos(tok), eos = bm_tok_eos(tok);
    if (bos >= 0 && (t = bm_tok_token_text(tok, bos, &n)))
        json_object_set_new(c.ctx, "bos_token", json_stringn(t, n));
    if (eos >= 0 && (t = bm_tok_token_text(tok, eos, &n)))
        json_object_set_new(c.ctx, "eos_token", json_stringn(t, n));
    char *data = NULL;
    if (!st) st = bm_file_read(jsonl, &data, &n, MAX_FILE, err);
    size_t line = 0;
    for (size_t i = 0; !st && i < n;) {
        size_t j = i;
        while (j < n && data[j] != '\n') j++;
        line++;
        if (j > i) st = chat_conv(&c, jsonl, line, data + i, j - i, err);
        i = j + 1;
    }
    if (!st && p.train.n == 0)
        st = bm_err_set(err, BM_EINVAL, "data: '%s' gave no training conversations", jsonl);
    if (!st) st = write_out(&p, dir, true, err);
    free(data);
    bm_tmpl_free(c.tmpl);
    json_decref(c.ctx);
    prep_fini(&p);
    return st;
}
