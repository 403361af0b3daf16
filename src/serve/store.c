/* Conversation store for the web page: a SQLite file in WAL mode with conversations and
 * messages tables, and the routes GET/POST /api/conversations and GET/PUT/DELETE
 * /api/conversations/{id}. One connection guarded by a mutex (writes are small and rare);
 * every statement is prepared with bound parameters. */
#include "serve/serve_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct srv_store {
    sqlite3 *db;
    pthread_mutex_t mu;
};

static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA foreign_keys=ON;"
    "CREATE TABLE IF NOT EXISTS conversations("
    " id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '',"
    " system TEXT NOT NULL DEFAULT '', settings TEXT NOT NULL DEFAULT '{}',"
    " created_at REAL NOT NULL, updated_at REAL NOT NULL);"
    "CREATE TABLE IF NOT EXISTS messages("
    " conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,"
    " PRIMARY KEY(conversation_id, seq));"
    "CREATE INDEX IF NOT EXISTS conversations_updated ON conversations(updated_at);";

bm_status srv_store_open(const char *path, srv_store **out, bm_err *err) {
    *out = NULL;
    srv_store *st = bm_calloc(1, sizeof *st, err);
    if (!st) return BM_ENOMEM;
    int rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    char *msg = NULL;
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(st->db, 5000);
        rc = sqlite3_exec(st->db, SCHEMA, NULL, NULL, &msg);
    }
    if (rc != SQLITE_OK) {
        bm_err_set(err, BM_EIO, "serve: conversation store '%s': %s", path,
                   msg ? msg : st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        sqlite3_free(msg);
        sqlite3_close(st->db);
        free(st);
        return BM_EIO;
    }
    pthread_mutex_init(&st->mu, NULL);
    *out = st;
    return BM_OK;
}

void srv_store_close(srv_store *st) {
    if (!st) return;
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool valid_id(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > 32) return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) return false;
    return true;
}

static json_t *col_text(sqlite3_stmt *s, int i) {
    const char *t = (const char *)sqlite3_column_text(s, i);
    return srv_json_text(t ? t : "", (size_t)sqlite3_column_bytes(s, i));
}

/* The conversation (with messages) or NULL when absent. Called with mu held. */
static json_t *load(srv_store *st, const char *id) {
    sqlite3_stmt *s = NULL;
    json_t *o = NULL;
    sqlite3_prepare_v2(st->db,
                       "SELECT id,title,model,system,settings,created_at,updated_at "
                       "FROM conversations WHERE id=?",
                       -1, &s, NULL);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) == SQLITE_ROW) {
        json_t *settings = json_loads((const char *)sqlite3_column_text(s, 4), 0, NULL);
        o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:f,s:f}", "id", col_text(s, 0), "title",
                      col_text(s, 1), "model", col_text(s, 2), "system", col_text(s, 3),
                      "settings", settings ? settings : json_object(), "created_at",
                      sqlite3_column_double(s, 5), "updated_at", sqlite3_column_double(s, 6));
    }
    sqlite3_finalize(s);
    if (!o) return NULL;
    json_t *msgs = json_array();
    sqlite3_prepare_v2(st->db,
                       "SELECT role,content FROM messages WHERE conversation_id=? ORDER BY seq",
                       -1, &s, NULL);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(s) == SQLITE_ROW)
        json_array_append_new(msgs, json_pack("{s:o,s:o}", "role", col_text(s, 0), "content",
                                              col_text(s, 1)));
    sqlite3_finalize(s);
    json_object_set_new(o, "messages", msgs);
    return o;
}

static bool check_body(json_t *b, srv_error *e) {
    const char *keys[] = {"title", "model", "system"};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(b, keys[i]);
        if (v && !json_is_string(v))
            return srv_fail(e, 400, keys[i], "%s must be a string", keys[i]);
    }
    json_t *s = json_object_get(b, "settings");
    if (s && !json_is_object(s)) return srv_fail(e, 400, "settings", "settings must be an object");
    json_t *m = json_object_get(b, "messages");
    if (m && !json_is_array(m)) return srv_fail(e, 400, "messages", "messages must be an array");
    if (json_array_size(m) > 10000)
        return srv_fail(e, 400, "messages", "messages has %zu entries; the limit is 10000",
                        json_array_size(m));
    size_t i;
    json_t *x;
    json_array_foreach(m, i, x) {
        if (!json_is_string(json_object_get(x, "role")) ||
            !json_is_string(json_object_get(x, "content")))
            return srv_fail(e, 400, "messages", "messages[%zu] must have string role and content",
                            i);
    }
    return true;
}

static void set_text(sqlite3_stmt *s, int i, json_t *v) {
    sqlite3_bind_text(s, i, json_string_value(v), (int)json_string_length(v), SQLITE_TRANSIENT);
}

/* Writes fields present in b (and messages, replaced whole) into conversation id. */
static bool save(srv_store *st, const char *id, json_t *b, bool create, srv_error *e) {
    double t = now_s();
    sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    if (create) {
        sqlite3_prepare_v2(st->db,
                           "INSERT INTO conversations(id,created_at,updated_at) VALUES(?,?,?)",
                           -1, &s, NULL);
        sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(s, 2, t);
        sqlite3_bind_double(s, 3, t);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_finalize(s);
    }
    const char *cols[] = {"title", "model", "system"};
    for (int i = 0; i < 3 && rc == SQLITE_OK; i++) {
        json_t *v = json_object_get(b, cols[i]);
        if (!v) continue;
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE conversations SET %s=? WHERE id=?", cols[i]);
        sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
        set_text(s, 1, v);
        sqlite3_bind_text(s, 2, id, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_finalize(s);
    }
    json_t *settings = json_object_get(b, "settings");
    if (settings && rc == SQLITE_OK) {
        char *js = json_dumps(settings, JSON_COMPACT);
        sqlite3_prepare_v2(st->db, "UPDATE conversations SET settings=? WHERE id=?", -1, &s,
                           NULL);
        sqlite3_bind_text(s, 1, js ? js : "{}", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, id, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_finalize(s);
        free(js);
    }
    json_t *msgs = json_object_get(b, "messages");
    if (msgs && rc == SQLITE_OK) {
        sqlite3_prepare_v2(st->db, "DELETE FROM messages WHERE conversation_id=?", -1, &s, NULL);
        sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_finalize(s);
        sqlite3_prepare_v2(st->db,
                           "INSERT INTO messages(conversation_id,seq,role,content) "
                           "VALUES(?,?,?,?)",
                           -1, &s, NULL);
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m) {
            if (rc != SQLITE_OK) break;
            sqlite3_reset(s);
            sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
            set_text(s, 3, json_object_get(m, "role"));
            set_text(s, 4, json_object_get(m, "content"));
            rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        }
        sqlite3_finalize(s);
    }
    if (rc == SQLITE_OK) {
        sqlite3_prepare_v2(st->db, "UPDATE conversations SET updated_at=? WHERE id=?", -1, &s,
                           NULL);
        sqlite3_bind_double(s, 1, t);
        sqlite3_bind_text(s, 2, id, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_finalize(s);
    }
    if (rc != SQLITE_OK) {
        srv_fail(e, 500, NULL, "conversation store: %s", sqlite3_errmsg(st->db));
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return false;
    }
    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    return true;
}

static json_t *list(srv_store *st) {
    json_t *a = json_array();
    sqlite3_stmt *s = NULL;
    sqlite3_prepare_v2(st->db,
                       "SELECT c.id,c.title,c.model,c.created_at,c.updated_at,"
                       "(SELECT COUNT(*) FROM messages m WHERE m.conversation_id=c.id) "
                       "FROM conversations c ORDER BY c.updated_at DESC LIMIT 1000",
                       -1, &s, NULL);
    while (sqlite3_step(s) == SQLITE_ROW)
        json_array_append_new(
            a, json_pack("{s:o,s:o,s:o,s:f,s:f,s:I}", "id", col_text(s, 0), "title",
                         col_text(s, 1), "model", col_text(s, 2), "created_at",
                         sqlite3_column_double(s, 3), "updated_at", sqlite3_column_double(s, 4),
                         "n_messages", (json_int_t)sqlite3_column_int64(s, 5)));
    sqlite3_finalize(s);
    return json_pack("{s:o}", "conversations", a);
}

enum MHD_Result srv_store_route(srv_req *r, const char *id) {
    srv_store *st = r->srv->store;
    srv_error e;
    if (!st) {
        srv_fail(&e, 404, NULL, "this server has no conversation store (started without --db?)");
        return srv_send_error(r, &e);
    }
    const char *m = r->method;
    if (id && !valid_id(id)) {
        srv_fail(&e, 404, "id", "conversation id '%.40s' is not valid (1-32 hex digits)", id);
        return srv_send_error(r, &e);
    }
    json_t *body = NULL;
    if (!strcmp(m, "POST") || !strcmp(m, "PUT")) {
        if (!(body = srv_body_json(r, &e)) || !check_body(body, &e)) {
            json_decref(body);
            return srv_send_error(r, &e);
        }
    }
    json_t *res = NULL;
    int status = 200;
    pthread_mutex_lock(&st->mu);
    if (!id && !strcmp(m, "GET")) {
        res = list(st);
    } else if (!id && !strcmp(m, "POST")) {
        char nid[33];
        bm_rng rng;
        bm_rng_seed(&rng, (uint64_t)(now_s() * 1e9) ^ (uint64_t)(uintptr_t)r);
        snprintf(nid, sizeof nid, "%016llx", (unsigned long long)bm_rng_u64(&rng));
        if (save(st, nid, body, true, &e)) res = load(st, nid), status = 201;
    } else if (id && !strcmp(m, "GET")) {
        if (!(res = load(st, id))) srv_fail(&e, 404, "id", "no conversation '%s'", id);
    } else if (id && !strcmp(m, "PUT")) {
        json_t *cur = load(st, id);
        if (!cur) srv_fail(&e, 404, "id", "no conversation '%s'", id);
        else if (save(st, id, body, false, &e)) res = load(st, id);
        json_decref(cur);
    } else if (id && !strcmp(m, "DELETE")) {
        sqlite3_stmt *s = NULL;
        sqlite3_prepare_v2(st->db, "DELETE FROM conversations WHERE id=?", -1, &s, NULL);
        sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_step(s);
        sqlite3_finalize(s);
        if (sqlite3_changes(st->db) == 0) srv_fail(&e, 404, "id", "no conversation '%s'", id);
        else res = json_pack("{s:s,s:b}", "id", id, "deleted", 1);
    } else {
        srv_fail(&e, 405, NULL, "method %s is not allowed on %s", m, r->url);
    }
    pthread_mutex_unlock(&st->mu);
    json_decref(body);
    return res ? srv_send_json(r, status, res) : srv_send_error(r, &e);
}
