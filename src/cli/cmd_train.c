/* baimo train: trains a llama/qwen2 model from scratch (--arch ...), from a GGUF model
 * (--init, full-parameter fine-tuning) or from a checkpoint (--resume) on token shards made
 * by `baimo data prepare`. Under `mpirun -np N` the ranks split each global batch (data
 * parallel); only rank 0 prints and writes the model, its .opt sidecar, a CSV log and an SVG
 * loss curve next to the model. */
#include "cli.h"
#include "cli_model.h"

#include "baimo/train.h"

#include <stdlib.h>
#include <string.h>

static void usage(void) {
    fprintf(stderr,
            "usage: baimo train -d DIR -o MODEL.gguf --steps S --batch B --lr LR\n"
            "         (--arch llama|qwen2 --dim D --layers L --heads H [--kv-heads K] --ff F\n"
            "          --ctx T --tokenizer tokenizer.json [--tied] | --init MODEL.gguf | "
            "--resume CKPT.gguf)\n"
            "         [--seq T] [--warmup N] [--accum N] [--wd W] [--clip C] [--min-lr LR]\n"
            "         [--seed S] [--eval-every N] [--save-every N] [--log-every N] [-t THREADS]\n"
            "         [--stop-at STEP]  (stop and checkpoint after STEP; the schedule still\n"
            "                            spans --steps, so --resume continues the same run)\n"
            "  Checkpoints are GGUF models (run them with `baimo run`) plus MODEL.gguf.opt;\n"
            "  MODEL.csv and MODEL.svg hold the loss log and curve. Under mpirun each rank\n"
            "  takes B sequences of every global batch.\n");
}

typedef struct pt {
    int64_t step;
    double loss, val;
} pt;

typedef struct run_state {
    bm_tok *tok;
    pt *pts;
    size_t n_pts, cap_pts;
} run_state;

static bm_status write_tok(void *user, bm_gguf_writer *w, bm_err *err) {
    return bm_tok_write_gguf(user, w, err);
}

static void side_path(char *out, size_t cap, const char *model, const char *ext) {
    size_t n = strlen(model);
    if (n > 5 && !strcmp(model + n - 5, ".gguf")) n -= 5;
    snprintf(out, cap, "%.*s%s", (int)n, model, ext);
}

static void add_pt(run_state *r, int64_t step, double loss, double val) {
    if (r->n_pts == r->cap_pts) {
        size_t c = r->cap_pts ? r->cap_pts * 2 : 256;
        pt *p = realloc(r->pts, c * sizeof *p);
        if (!p) return;
        r->pts = p;
        r->cap_pts = c;
    }
    r->pts[r->n_pts++] = (pt){step, loss, val};
}

/* Loss curve: training loss (blue) and validation loss (orange dots) over steps. */
static void write_svg(const char *path, const run_state *r) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    const double W = 640, H = 360, ml = 50, mr = 10, mt = 20, mb = 30;
    double lo = 1e30, hi = -1e30;
    int64_t s0 = r->n_pts ? r->pts[0].step : 0, s1 = r->n_pts ? r->pts[r->n_pts - 1].step : 1;
    for (size_t i = 0; i < r->n_pts; i++) {
        double v[2] = {r->pts[i].loss, r->pts[i].val};
        for (int k = 0; k < 2; k++)
            if (v[k] == v[k] && v[k] >= 0) {
                lo = v[k] < lo ? v[k] : lo;
                hi = v[k] > hi ? v[k] : hi;
            }
    }
    if (hi <= lo) hi = lo + 1;
    if (s1 <= s0) s1 = s0 + 1;
#define X(s) (ml + ((double)(s) - s0) / (double)(s1 - s0) * (W - ml - mr))
#define Y(v) (mt + (hi - (v)) / (hi - lo) * (H - mt - mb))
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" "
               "height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", ml, H - mb,
            W - mr, H - mb);
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n", ml, mt, ml,
            H - mb);
    fprintf(f, "<text x=\"2\" y=\"%g\">%.3f</text><text x=\"2\" y=\"%g\">%.3f</text>\n", mt + 4,
            hi, H - mb, lo);
    fprintf(f, "<text x=\"%g\" y=\"%g\">step %lld</text><text x=\"%g\" y=\"%g\" "
               "text-anchor=\"end\">step %lld</text>\n", ml, H - 8, (long long)s0, W - mr,
            H - 8, (long long)s1);
    fprintf(f, "<text x=\"%g\" y=\"14\">loss (blue: train, orange: validation)</text>\n", ml);
    fprintf(f, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"");
    for (size_t i = 0; i < r->n_pts; i++)
        if (r->pts[i].loss >= 0) fprintf(f, "%.1f,%.1f ", X(r->pts[i].step), Y(r->pts[i].loss));
    fprintf(f, "\"/>\n");
    for (size_t i = 0; i < r->n_pts; i++)
        if (r->pts[i].val >= 0)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#ff7f0e\"/>\n",
                    X(r->pts[i].step), Y(r->pts[i].val));
    fprintf(f, "</svg>\n");
#undef X
#undef Y
    fclose(f);
}

/* Reads back an existing CSV log (resume) into the points of the curve. */
static void read_csv(const char *path, run_state *r, int64_t upto) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        long long s;
        char a[64] = "", b[64] = "";
        if (sscanf(line, "%lld,%63[^,],%63[^,]", &s, a, b) < 2 || s > upto) continue;
        add_pt(r, s, a[0] ? atof(a) : -1, b[0] ? atof(b) : -1);
    }
    fclose(f);
}

static void fmt_eta(double s, char *buf, size_t cap) {
    if (s < 0 || s > 1e8) s = 0;
    long v = (long)(s + 0.5);
    if (v >= 3600)
        snprintf(buf, cap, "%ldh%02ldm", v / 3600, v / 60 % 60);
    else
        snprintf(buf, cap, "%ldm%02lds", v / 60, v % 60);
}

int cmd_train(int argc, char **argv) {
    bm_err err = {0};
    bm_dist dist;
    if (bm_dist_mpi_init(&dist, &argc, &argv, &err)) return cli_fail("train", &err);
    const bool root = dist.rank == 0;
    const char *arch = NULL, *dir = NULL, *out = NULL, *tok_path = NULL, *resume = NULL,
               *init = NULL;
    int64_t dim = 0, layers = 0, heads = 0, kv_heads = 0, ff = 0, ctx = 0, seq = 0, batch = 0,
            steps = 0, warmup = -1, accum = 1, seed = 1, eval_every = 0, save_every = 0,
            log_every = 1, threads = 0, stop_at = 0;
    double lr = 0, min_lr = -1, wd = 0.1, clip = 1.0, theta = 10000.0;
    bool bad = false, tied = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (cli_opt_str(argc, argv, &i, "--arch", NULL, &arch, &bad) ||
            cli_opt_str(argc, argv, &i, "-d", "--data", &dir, &bad) ||
            cli_opt_str(argc, argv, &i, "-o", "--output", &out, &bad) ||
            cli_opt_str(argc, argv, &i, "--tokenizer", NULL, &tok_path, &bad) ||
            cli_opt_str(argc, argv, &i, "--resume", NULL, &resume, &bad) ||
            cli_opt_str(argc, argv, &i, "--init", NULL, &init, &bad) ||
            cli_opt_int(argc, argv, &i, "--dim", NULL, 2, 1 << 16, &dim, &bad) ||
            cli_opt_int(argc, argv, &i, "--layers", NULL, 1, 1024, &layers, &bad) ||
            cli_opt_int(argc, argv, &i, "--heads", NULL, 1, 4096, &heads, &bad) ||
            cli_opt_int(argc, argv, &i, "--kv-heads", NULL, 1, 4096, &kv_heads, &bad) ||
            cli_opt_int(argc, argv, &i, "--ff", NULL, 1, 1 << 20, &ff, &bad) ||
            cli_opt_int(argc, argv, &i, "--ctx", NULL, 1, 1 << 20, &ctx, &bad) ||
            cli_opt_int(argc, argv, &i, "--seq", NULL, 1, 1 << 20, &seq, &bad) ||
            cli_opt_int(argc, argv, &i, "--batch", NULL, 1, 1 << 16, &batch, &bad) ||
            cli_opt_int(argc, argv, &i, "--steps", NULL, 1, INT64_MAX / 4, &steps, &bad) ||
            cli_opt_int(argc, argv, &i, "--warmup", NULL, 0, INT64_MAX / 4, &warmup, &bad) ||
            cli_opt_int(argc, argv, &i, "--accum", NULL, 1, 1 << 16, &accum, &bad) ||
            cli_opt_int(argc, argv, &i, "--seed", NULL, 0, INT64_MAX, &seed, &bad) ||
            cli_opt_int(argc, argv, &i, "--eval-every", NULL, 0, INT64_MAX, &eval_every, &bad) ||
            cli_opt_int(argc, argv, &i, "--save-every", NULL, 0, INT64_MAX, &save_every, &bad) ||
            cli_opt_int(argc, argv, &i, "--log-every", NULL, 1, INT64_MAX, &log_every, &bad) ||
            cli_opt_int(argc, argv, &i, "-t", "--threads", 0, 1024, &threads, &bad) ||
            cli_opt_int(argc, argv, &i, "--stop-at", NULL, 1, INT64_MAX, &stop_at, &bad) ||
            cli_opt_float(argc, argv, &i, "--lr", NULL, 0, 10, &lr, &bad) ||
            cli_opt_float(argc, argv, &i, "--min-lr", NULL, 0, 10, &min_lr, &bad) ||
            cli_opt_float(argc, argv, &i, "--wd", NULL, 0, 10, &wd, &bad) ||
            cli_opt_float(argc, argv, &i, "--clip", NULL, 0, 1e6, &clip, &bad) ||
            cli_opt_float(argc, argv, &i, "--rope-theta", NULL, 1, 1e9, &theta, &bad))
            continue;
        if (cli_opt_flag(argv, i, "--tied", NULL)) {
            tied = true;
            continue;
        }
        if (cli_opt_flag(argv, i, "-h", "--help")) {
            if (root) usage();
            bm_dist_mpi_fini(&dist);
            return 0;
        }
        if (root) {
            cli_failf("train", "unknown option '%s'", argv[i]);
            usage();
        }
        bm_dist_mpi_fini(&dist);
        return 2;
    }
    int rc = 1;
    bm_pool *pool = NULL;
    bm_data *train = NULL, *val = NULL;
    bm_tmodel *m = NULL;
    bm_trainer *tr = NULL;
    run_state rs = {0};
    FILE *csv = NULL;
    if (bad) {
        rc = 2;
        goto done;
    }
    if (!dir || !out || !steps || !batch || lr <= 0) {
        if (root) {
            usage();
            cli_failf("train", "-d, -o, --steps, --batch and --lr (> 0) are required");
        }
        goto done;
    }
    if (!resume && !init && (!arch || !dim || !layers || !heads || !ff || !ctx)) {
        if (root)
            cli_failf("train", "a new model needs --arch, --dim, --layers, --heads, --ff and "
                      "--ctx (or use --init MODEL.gguf / --resume CKPT.gguf)");
        goto done;
    }
    if (threads == 0) {
        const char *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
        int local = ls ? atoi(ls) : 1;
        threads = bm_cpu_count() / (local > 0 ? local : 1);
        if (threads < 1) threads = 1;
    }
    if (!(pool = bm_pool_new((int)threads, &err))) goto fail;
    const char *tsrc = tok_path ? tok_path : resume ? resume : init;
    if (tsrc && cli_load_tok(tsrc, &rs.tok, &err)) {
        if (tok_path) goto fail;
        rs.tok = NULL; /* a model without an embedded tokenizer: train on ids alone */
    }
    if (bm_data_open(dir, "train", &train, &err)) goto fail;
    if (bm_data_open(dir, "val", &val, &err)) {
        if (err.code != BM_ENOTFOUND) goto fail;
        val = NULL;
    }
    if (resume || init) {
        if (bm_tmodel_load(resume ? resume : init, (int32_t)ctx, pool, &m, &err)) goto fail;
    } else {
        bm_train_hparams hp = {.n_embd = (int32_t)dim, .n_layer = (int32_t)layers,
                               .n_head = (int32_t)heads,
                               .n_head_kv = (int32_t)(kv_heads ? kv_heads : heads),
                               .n_ff = (int32_t)ff, .n_ctx = (int32_t)ctx, .tied = tied,
                               .rope_theta = (float)theta};
        snprintf(hp.arch, sizeof hp.arch, "%s", arch);
        hp.n_vocab = rs.tok ? bm_tok_n_vocab(rs.tok) : (int32_t)bm_data_n_vocab(train);
        if (bm_tmodel_new(&hp, (uint64_t)seed, true, pool, &m, &err)) goto fail;
    }
    const bm_train_hparams *hp = bm_tmodel_hparams(m);
    bm_train_opts o = {.batch = (int32_t)batch, .seq = (int32_t)(seq ? seq : hp->n_ctx),
                       .accum = (int32_t)accum, .steps = steps,
                       .warmup = warmup >= 0 ? warmup : steps / 20, .lr = (float)lr,
                       .min_lr = (float)(min_lr >= 0 ? min_lr : lr / 10), .clip = (float)clip,
                       .adamw = {0.9f, 0.95f, 1e-8f, (float)wd}, .seed = (uint64_t)seed};
    if (bm_trainer_new(m, train, val, &o, &dist, &tr, &err)) goto fail;
    if (resume && bm_trainer_resume(tr, resume, &err)) goto fail;

    char csv_path[4096], svg_path[4096];
    side_path(csv_path, sizeof csv_path, out, ".csv");
    side_path(svg_path, sizeof svg_path, out, ".svg");
    int64_t step0 = bm_trainer_step_count(tr);
    if (root) {
        if (step0 > 0) read_csv(csv_path, &rs, step0);
        csv = fopen(csv_path, step0 > 0 ? "a" : "w");
        if (!csv) {
            cli_failf("train", "cannot write '%s'", csv_path);
            goto done;
        }
        if (step0 == 0) fprintf(csv, "step,loss,val_loss,lr,tokens_per_s\n");
        fprintf(stderr, "train: %s, %llu parameters, vocab %d, dim %d, %d layers, %d/%d heads, "
                "ff %d, ctx %d; %llu training tokens%s; %d rank(s) x batch %lld x %d tokens x "
                "accum %lld; %lld threads\n", hp->arch,
                (unsigned long long)bm_tmodel_n_params(m), hp->n_vocab, hp->n_embd,
                hp->n_layer, hp->n_head, hp->n_head_kv, hp->n_ff, hp->n_ctx,
                (unsigned long long)bm_data_n_tokens(train), val ? "" : " (no validation split)",
                dist.world, (long long)batch, o.seq, (long long)accum, (long long)threads);
    }
    if (!save_every) save_every = eval_every ? eval_every : steps;
    double t0 = bm_time_now(), tokens = 0;
    for (int64_t s = step0; s < steps; s++) {
        bm_train_stats st;
        double ts = bm_time_now();
        if (bm_trainer_step(tr, &st, &err)) goto fail;
        double now = bm_time_now(), tps = (double)st.tokens / (now - ts + 1e-9);
        tokens += (double)st.tokens;
        double val_loss = -1;
        bool last = st.step == steps || st.step == stop_at;
        if ((eval_every && st.step % eval_every == 0) || (last && eval_every)) {
            if (bm_trainer_eval(tr, &val_loss, &err)) goto fail;
        }
        if (!root) {
            if (st.step == stop_at) break;
            continue;
        }
        char eta[32];
        double avg = tokens / (now - t0 + 1e-9);
        fmt_eta((double)(steps - st.step) * (now - t0) / (double)(st.step - step0), eta,
                sizeof eta);
        if (st.step % log_every == 0 || last || val_loss >= 0)
            fprintf(stderr, "step %lld/%lld | loss %.4f | lr %.3e | norm %.3f | %.0f tok/s | "
                    "ETA %s\n", (long long)st.step, (long long)steps, st.loss, st.lr,
                    st.grad_norm, avg, eta);
        if (val_loss >= 0) fprintf(stderr, "step %lld | val_loss %.4f\n", (long long)st.step,
                                   val_loss);
        fprintf(csv, "%lld,%.6f,", (long long)st.step, st.loss);
        if (val_loss >= 0) fprintf(csv, "%.6f", val_loss);
        fprintf(csv, ",%.6e,%.1f\n", st.lr, tps);
        fflush(csv);
        add_pt(&rs, st.step, st.loss, val_loss);
        if (st.step % save_every == 0 || last) {
            if (bm_trainer_save(tr, out, rs.tok ? write_tok : NULL, rs.tok, &err)) goto fail;
            write_svg(svg_path, &rs);
        }
        if (st.step == stop_at) break;
    }
    if (root)
        fprintf(stderr, "train: wrote %s (+ .opt), %s, %s\n", out, csv_path, svg_path);
    rc = 0;
    goto done;
fail:
    rc = cli_fail("train", &err);
done:
    if (csv) fclose(csv);
    bm_trainer_free(tr);
    bm_tmodel_free(m);
    bm_data_close(train);
    bm_data_close(val);
    bm_tok_free(rs.tok);
    free(rs.pts);
    bm_pool_free(pool);
    bm_dist_mpi_fini(&dist);
    return rc;
}
