/* cmd_batch.c - `moestream batch`: headless generation over a JSONL file in
 * the OpenAI batch format (custom_id, body with messages and sampler
 * fields; plain text lines are accepted as one user message), one output
 * line per request in the OpenAI batch output format plus "line", the
 * input line number it answers.  --parallel N generates up to N lines
 * together (continuous batching through ms_batch: at temperature 0 each
 * result is the one the line gets alone); records are then written in the
 * order the replies finish ("line" and custom_id say which is which).  The
 * default, 1, answers the lines one after another, in input order.
 *
 * Nothing is lost, nothing is destroyed:
 *  - Each record is written whole with write(2), then fsynced (regular
 *    files); a failed or short write stops the run with the path and the
 *    cause, cuts the torn record off again, and exits 1.  The summary
 *    counts only records that reached the disk.
 *  - --resume keys records by input line, so a line is never answered
 *    twice, whatever order the records are in; a torn last line (a crash
 *    or a full disk mid-record) is dropped; a record for a line whose
 *    custom_id differs (the input changed) stops the run.
 *  - An existing non-empty OUT is refused unless --resume or --overwrite;
 *    IN and OUT naming the same file is refused; so is an OUT another
 *    batch run holds (flock).
 *  - IN is read once, front to back, so a pipe works (`-i -` is stdin).
 *  - SIGINT/SIGTERM stop between records: a reply being generated is
 *    dropped whole (resume redoes it); exit 130/143.
 * A bad input line (invalid JSON, blank, a JSON array, a duplicate
 * custom_id) becomes an error record; lines are parsed by request.c, the
 * same validation as the server's.  Empty lines are skipped.
 *
 * Exit status: 0 every non-empty line of IN has its record in OUT (answers
 * or error records); 1 an error (IN unreadable, OUT refused or not
 * writable, the model failed to load); 2 bad usage; 130/143 interrupted
 * by SIGINT/SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"
#include "fault.h"
#include "moestream.h"
#include "request.h"
#include "strbuf.h"

#define BATCH_USAGE "usage: moestream batch -m MODEL -i IN.jsonl|- -o OUT.jsonl [--resume|--overwrite] [-n MAX] [options]\n"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The signal that asked to stop (SIGINT or SIGTERM), 0 while none did;
 * also ms_generate's cancel poll, so a reply stops at the next token. */
static volatile sig_atomic_t stop_sig;

static void on_stop(int sig)
{
    stop_sig = sig;
}

typedef struct outbuf {
    strbuf answer, reasoning;
} outbuf;

/* ms_generate's cancel poll: a signal stops the reply at the next token */
static int stopped(void *ud)
{
    (void)ud;
    return stop_sig != 0;
}

static int collect(void *ud, const char *t, size_t n, bool reasoning)
{
    outbuf *o = ud;
    return strbuf_append(reasoning ? &o->reasoning : &o->answer, t, n);
}

/* ---- output ---- */

typedef struct output {
    const char *path;
    int fd;
    bool regular; /* a regular file: records are fsynced, resume and repair apply */
} output;

/* Writes one record as a line: 0, or -errno with "cannot write PATH: why"
 * in err.  A failure cuts the file back to where the record began, so no
 * torn line is left behind (where even that fails, --resume drops it). */
static int write_record(output *o, json_t *rec, char *err, size_t errlen)
{
    char *s = json_dumps(rec, JSON_COMPACT);
    strbuf b = STRBUF_INIT;
    int e = 0;
    size_t done = 0;
    off_t start = -1;
    if (!s || strbuf_puts(&b, s) || strbuf_append(&b, "\n", 1)) {
        free(s);
        strbuf_free(&b);
        snprintf(err, errlen, "cannot write %s: out of memory formatting a record", o->path);
        return -ENOMEM;
    }
    free(s);
    if (o->regular && (start = lseek(o->fd, 0, SEEK_END)) < 0) {
        e = errno;
        goto fail;
    }
    /* MOESTREAM_FAULT=write:N: half the record goes out, then EIO, as a
     * disk that fills up mid-record does */
    bool torn = fault_hit(FAULT_WRITE);
    size_t end = torn ? b.n / 2 : b.n;
    while (done < end) {
        ssize_t w = write(o->fd, b.s + done, end - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            goto fail;
        }
        done += (size_t)w;
    }
    if (torn) {
        e = EIO;
        goto fail;
    }
    if (o->regular && fsync(o->fd) != 0) {
        e = errno;
        goto fail;
    }
    strbuf_free(&b);
    return 0;
fail:
    strbuf_free(&b);
    bool cut = start >= 0 && ftruncate(o->fd, start) == 0;
    snprintf(err, errlen, "cannot write %s: %s%s", o->path, strerror(e),
             done && !cut ? " (a torn last line remains; --resume drops it)" : "");
    return -e;
}

/* The directory entry of a new OUT is durable only once its directory is
 * synced; best effort (some filesystems refuse fsync on a directory). */
static void sync_dir(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return;
    int fd = open(dirname(p), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(p);
}

/* ---- resume ---- */

typedef struct done_set {
    json_t *by_line; /* "N" -> the custom_id recorded for input line N (or null) */
    json_t *by_cid;  /* custom_id -> true, for records without "line" (older output) */
} done_set;

/* Reads the records already in OUT (a regular file): fills d, drops a torn
 * last line (one without its newline: a crash or a full disk mid-record).
 * A complete line that is not a record is refused rather than guessed at.
 * 0 or -errno with the message in err. */
static int resume_scan(output *o, done_set *d, long *n_records, char *err, size_t errlen)
{
    *n_records = 0;
    /* the descriptor is write-only: read through the path, but only the
     * file that descriptor holds (same inode) */
    FILE *f = fopen(o->path, "r");
    struct stat a, b;
    if (!f || fstat(fileno(f), &a) || fstat(o->fd, &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        int e = f ? EAGAIN : errno;
        if (f)
            fclose(f);
        snprintf(err, errlen, "cannot read %s: %s", o->path, f ? "replaced while opening" : strerror(e));
        return -e;
    }
    char *line = NULL;
    size_t cap = 0;
    off_t good = 0;
    long no = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        no++;
        if (line[n - 1] != '\n')
            break; /* torn: cut below */
        json_t *j = json_loadb(line, (size_t)n, 0, NULL);
        json_t *ln = json_object_get(j, "line");
        json_t *cid = json_object_get(j, "custom_id");
        bool rec = json_is_object(j) && json_object_get(j, "response") && (!cid || json_is_string(cid) || json_is_null(cid)) &&
                   (!ln || (json_is_integer(ln) && json_integer_value(ln) > 0));
        if (!rec) {
            json_decref(j);
            snprintf(err, errlen, "%s: line %ld is not a batch result record; not resuming over "
                                  "it (move it away or use --overwrite)", o->path, no);
            rc = -EBADMSG;
            break;
        }
        if (ln) {
            char key[32];
            snprintf(key, sizeof key, "%lld", (long long)json_integer_value(ln));
            json_object_set(d->by_line, key, cid && json_is_string(cid) ? cid : json_null());
        } else if (json_is_string(cid)) {
            json_object_set_new(d->by_cid, json_string_value(cid), json_true());
        }
        json_decref(j);
        good += n;
        (*n_records)++;
    }
    if (!rc && ferror(f)) {
        rc = -EIO;
        snprintf(err, errlen, "cannot read %s: %s", o->path, strerror(errno));
    }
    free(line);
    fclose(f);
    if (rc)
        return rc;
    if (lseek(o->fd, 0, SEEK_END) > good) {
        if (ftruncate(o->fd, good) != 0 || fsync(o->fd) != 0) {
            int e = errno;
            snprintf(err, errlen, "cannot drop the torn last line of %s: %s", o->path, strerror(e));
            return -e;
        }
        fprintf(stderr, "moestream batch: %s: dropped a torn last line (an interrupted write)\n", o->path);
    }
    return 0;
}

/* ---- input ---- */

/* Opens IN ("-": standard input) for one front-to-back pass and counts
 * its lines when it is a regular file (for the progress bar; -1 when it
 * cannot be read twice).  NULL with the message printed on failure. */
static FILE *open_input(const char *in, struct stat *st, long *total)
{
    int fd = strcmp(in, "-") ? open(in, O_RDONLY | O_CLOEXEC | O_NOCTTY) : dup(0);
    if (fd < 0 || fstat(fd, st) != 0) {
        fprintf(stderr, "moestream batch: cannot read %s: %s\n", in, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st->st_mode) && !S_ISFIFO(st->st_mode) && !S_ISCHR(st->st_mode) &&
        !S_ISSOCK(st->st_mode)) {
        fprintf(stderr, "moestream batch: cannot read %s: %s, not a file of lines\n", in,
                S_ISDIR(st->st_mode) ? "a directory" : S_ISBLK(st->st_mode) ? "a block device"
                                                                           : "a special file");
        close(fd);
        return NULL;
    }
    *total = -1;
    if (S_ISREG(st->st_mode)) {
        off_t off = lseek(fd, 0, SEEK_CUR);
        char buf[1 << 16];
        ssize_t k;
        long lines = 0;
        int last = '\n';
        while (off >= 0 && (k = pread(fd, buf, sizeof buf, off)) > 0) {
            for (ssize_t i = 0; i < k; i++)
                lines += buf[i] == '\n';
            last = buf[k - 1];
            off += k;
        }
        *total = lines + (last != '\n');
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        fprintf(stderr, "moestream batch: cannot read %s: %s\n", in, strerror(errno));
        close(fd);
    }
    return f;
}

/* ---- records ---- */

static json_t *error_record(long idx, const char *cid, const char *code, const char *msg)
{
    char id[64];
    snprintf(id, sizeof id, "batch_req_%ld", idx);
    return json_pack("{s:s,s:s?,s:I,s:n,s:{s:s,s:s}}", "id", id, "custom_id", cid, "line",
                     (json_int_t)idx, "response", "error", "code", code, "message", msg);
}

static json_t *answer_record(long idx, const char *cid, const char *model_name, const outbuf *ob,
                             const ms_gen_result *res)
{
    char id[64], rid[64];
    snprintf(id, sizeof id, "batch_req_%ld", idx);
    snprintf(rid, sizeof rid, "chatcmpl-%ld-%ld", (long)time(NULL), idx);
    /* generated bytes may not be valid UTF-8 (a model can emit half a
     * character before stopping); JSON must be */
    char *ans = ms_utf8_sanitize(strbuf_str(&ob->answer), ob->answer.n);
    char *rs = ob->reasoning.n ? ms_utf8_sanitize(ob->reasoning.s, ob->reasoning.n) : NULL;
    if (!ans || (ob->reasoning.n && !rs)) {
        free(ans);
        free(rs);
        return NULL;
    }
    json_t *msg = json_pack("{s:s,s:s}", "role", "assistant", "content", ans);
    if (msg && rs)
        json_object_set_new(msg, "reasoning_content", json_string(rs));
    free(ans);
    free(rs);
    if (!msg)
        return NULL;
    return json_pack("{s:s,s:s,s:I,s:{s:i,s:s,s:{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}],s:{s:i,s:i,s:i}}},s:n}",
                     "id", id, "custom_id", cid, "line", (json_int_t)idx, "response", "status_code",
                     200, "request_id", rid, "body", "id", rid, "object", "chat.completion", "created",
                     (json_int_t)time(NULL), "model", model_name, "choices", "index", 0, "message", msg,
                     "finish_reason", !strcmp(res->finish, "length") ? "length" : "stop", "usage",
                     "prompt_tokens", res->n_prompt, "completion_tokens", res->n_gen, "total_tokens",
                     res->n_prompt + res->n_gen, "error");
}

/* ---- lines in generation ---- */

/* Where finished replies go: the output, the counters, the status. */
typedef struct run {
    output *out;
    const char *in, *model_name;
    int status;
    long n_ok, n_err;
} run;

/* A line handed to the batch, until its on_done. */
typedef struct pending {
    run *r;
    long idx;
    json_t *req;  /* the parsed line: rq (custom_id, stop strings) borrows from it */
    request rq;
    int32_t *ids;
    outbuf ob;
} pending;

/* The pending line's text and cancel: a signal, or a failed write (the
 * run stops; what is generating is dropped, resume redoes it). */
static int p_collect(void *ud, const char *t, size_t n, bool reasoning)
{
    pending *p = ud;
    return collect(&p->ob, t, n, reasoning);
}

static int p_stopped(void *ud)
{
    pending *p = ud;
    return stopped(NULL) || p->r->status;
}

/* One step of the batch; *most: the most sequences a step held. */
static int step(ms_batch *bt, int *most)
{
    int left = ms_batch_step(bt);
    ms_batch_stats bs;
    ms_batch_get_stats(bt, &bs);
    if (bs.last_step_seqs > *most)
        *most = bs.last_step_seqs;
    return left;
}

/* Writes one record; a failed write stops the run (status 1). */
static void put_record(run *r, json_t *rec, bool is_err, long idx)
{
    char err[512];
    if (write_record(r->out, rec, err, sizeof err)) {
        fprintf(stderr, "moestream batch: %s (at line %ld of %s)\n", err, idx, r->in);
        r->status = 1;
    } else {
        r->n_ok += !is_err;
        r->n_err += is_err;
    }
}

static void on_done(void *ud, int rc, const ms_gen_result *res, const char *err)
{
    pending *p = ud;
    run *r = p->r;
    json_t *rec = NULL;
    bool is_err = true;
    const char *cid = p->rq.custom_id;
    if (!rc && stop_sig && !strcmp(res->finish, "cancelled")) {
        /* stopped mid-reply: nothing half done is written */
    } else if (rc) {
        rec = error_record(p->idx, cid, rc == -E2BIG ? "context_length_exceeded" : "server_error", err);
    } else if (!(rec = answer_record(p->idx, cid, r->model_name, &p->ob, res))) {
        rec = error_record(p->idx, cid, "server_error", "out of memory formatting the answer");
    } else {
        is_err = false;
    }
    if (!rec && !stop_sig) {
        fprintf(stderr, "moestream batch: out of memory building the record for line %ld\n", p->idx);
        r->status = 1;
    } else if (rec && !r->status) { /* NULL with stop_sig: the reply was cut, resume redoes it */
        put_record(r, rec, is_err, p->idx);
    }
    json_decref(rec);
    ms_free(p->ids);
    strbuf_free(&p->ob.answer);
    strbuf_free(&p->ob.reasoning);
    json_decref(p->req);
    free(p);
}

static void progress(long idx, long total, double t0)
{
    if (!isatty(2))
        return;
    double el = now_s() - t0;
    if (total <= 0) { /* a pipe: no end known */
        fprintf(stderr, "\r%ld lines  %.0fs elapsed ", idx, el);
        return;
    }
    double eta = idx ? el / (double)idx * (double)(total - idx) : 0;
    int w = (int)(30 * idx / total);
    fprintf(stderr, "\r[%.*s%*s] %ld/%ld  %.0fs elapsed, ETA %.0fs ", w,
            "##############################", 30 - w, "", idx, total, el, eta);
    if (idx == total)
        fputc('\n', stderr);
}

/* ---- the command ---- */

typedef struct batch_args {
    cli_common c;
    ms_gen_opts base;
    const char *in, *out;
    bool resume, overwrite;
    long max_tokens;
} batch_args;

#define BATCH_PARALLEL_HELP                                                                        \
    "  --parallel, -np N  lines generated together (default 1: one after another, records\n"    \
    "                 in input order); each has its own cache of -c positions; records then\n"   \
    "                 come in the order replies finish\n"

/* 0 to run, or the exit status (0 after --help). */
static int parse_args(batch_args *a, int argc, char **argv, bool *done)
{
    *done = false;
    cli_common_default(&a->c);
    ms_gen_opts_default(&a->base);
    a->in = a->out = NULL;
    a->resume = a->overwrite = false;
    a->max_tokens = 1024;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_arg(&a->c, argc, argv, &i);
        if (!r)
            r = cli_sampler_arg(&a->base.sp, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(argv[i], "--resume"))
            a->resume = true;
        else if (!strcmp(argv[i], "--overwrite"))
            a->overwrite = true;
        else if (!strcmp(argv[i], "-i") && i + 1 < argc)
            a->in = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc)
            a->out = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], -1, 1 << 24, &a->max_tokens))
                return 2;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf(BATCH_USAGE
                   "  -i IN.jsonl    requests, one per line ('-': standard input; a pipe works)\n"
                   "  -o OUT.jsonl   results, one line each with \"line\": the input line it answers\n"
                   "  --resume       keep OUT's records and run only the lines without one\n"
                   "  --overwrite    replace a non-empty OUT (refused without this or --resume)\n"
                   "  -n, --n-predict N  max_tokens of lines that give none (default 1024; -1:\n"
                   "                 until end of text or context)\n" BATCH_PARALLEL_HELP
                   "exit status: 0 every line has its record in OUT; 1 error (nothing is\n"
                   "counted that is not on disk: run again with --resume); 2 usage;\n"
                   "130/143 stopped by SIGINT/SIGTERM (the reply in progress is dropped)\n%s%s",
                   cli_common_help(), cli_sampler_help());
            *done = true;
            return 0;
        } else {
            fprintf(stderr, "moestream batch: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!a->c.model || !a->in || !a->out) {
        fputs(BATCH_USAGE, stderr);
        return 2;
    }
    if (a->resume && a->overwrite) {
        fprintf(stderr, "moestream batch: --resume and --overwrite exclude each other\n");
        return 2;
    }
    return 0;
}

/* Opens OUT without truncating it, then refuses what would destroy data:
 * OUT being IN, or holding results when neither --resume nor --overwrite
 * was given.  0 or an exit status (message printed). */
static int open_output(output *o, const batch_args *a, const struct stat *in_st)
{
    o->path = a->out;
    o->fd = open(a->out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0666);
    struct stat st;
    if (o->fd < 0 || fstat(o->fd, &st) != 0) {
        fprintf(stderr, "moestream batch: cannot write %s: %s\n", a->out, strerror(errno));
        return 1;
    }
    o->regular = S_ISREG(st.st_mode);
    if (o->regular && S_ISREG(in_st->st_mode) && st.st_dev == in_st->st_dev && st.st_ino == in_st->st_ino) {
        fprintf(stderr, "moestream batch: %s and %s are the same file; writing results would "
                        "destroy the requests\n", a->in, a->out);
        return 1;
    }
    /* two runs appending to one OUT would answer lines twice */
    if (o->regular && flock(o->fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "moestream batch: %s is in use by another batch run (locked: %s)\n", a->out,
                strerror(errno));
        return 1;
    }
    if (o->regular && st.st_size > 0 && !a->resume && !a->overwrite) {
        fprintf(stderr, "moestream batch: %s is not empty (%lld bytes); --resume to finish it, "
                        "--overwrite to replace it\n", a->out, (long long)st.st_size);
        return 1;
    }
    return 0;
}

int cmd_batch(int argc, char **argv)
{
    batch_args a;
    bool help;
    int status = parse_args(&a, argc, argv, &help);
    if (status || help)
        return status;
    struct stat in_st;
    long total;
    FILE *fin = open_input(a.in, &in_st, &total);
    if (!fin)
        return 1;
    output out = {a.out, -1, false};
    done_set done = {json_object(), json_object()};
    char err[512] = "";
    long n_before = 0;
    ms_engine *e = NULL;
    ms_batch *bt = NULL;
    if ((status = open_output(&out, &a, &in_st)))
        goto end;
    if (a.resume && out.regular && resume_scan(&out, &done, &n_before, err, sizeof err)) {
        fprintf(stderr, "moestream batch: %s\n", err);
        status = 1;
        goto end;
    }
    ms_engine_opts eo;
    cli_engine_opts(&a.c, &eo);
    eo.max_seqs = a.c.parallel > 0 ? a.c.parallel : 1;
    int rc = ms_engine_open(&e, a.c.model, &eo, err, sizeof err);
    if (!rc)
        rc = ms_batch_create(e, eo.max_seqs, &bt, err, sizeof err);
    if (rc) {
        fprintf(stderr, "moestream batch: %s\n", err);
        status = 1;
        goto end;
    }
    /* only now, with the model loaded, are old results given up */
    if (a.overwrite && out.regular && (ftruncate(out.fd, 0) != 0 || fsync(out.fd) != 0)) {
        fprintf(stderr, "moestream batch: cannot truncate %s: %s\n", a.out, strerror(errno));
        status = 1;
        goto end;
    }
    if (out.regular)
        sync_dir(a.out);
    /* a write error is reported, not a death: no SIGPIPE on a closed pipe,
     * no SIGXFSZ past RLIMIT_FSIZE (write then fails with EFBIG) */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    /* no SA_RESTART: a read blocked on a pipe returns to see the flag */
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    const char *model_name = strrchr(a.c.model, '/') ? strrchr(a.c.model, '/') + 1 : a.c.model;
    json_t *seen = json_object(); /* custom_id -> the first line that claimed it */
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ln;
    long idx = 0, n_skip = 0;
    run R = {&out, a.in, model_name, 0, 0, 0};
    double t0 = now_s();
    ms_batch_stats bs;
    int most = 0;
    for (;;) {
        /* a free slot before the next line: with --parallel 1 each reply is
         * written before the next line is read, as in input order */
        ms_batch_get_stats(bt, &bs);
        while (bs.active >= bs.slots && !R.status) {
            step(bt, &most);
            ms_batch_get_stats(bt, &bs);
        }
        status = R.status;
        if (stop_sig || status || (ln = getline(&line, &lcap, fin)) <= 0)
            break;
        idx++;
        while (ln > 0 && (line[ln - 1] == '\n' || line[ln - 1] == '\r'))
            line[--ln] = 0;
        if (!ln) {
            progress(idx, total, t0);
            continue;
        }
        json_t *req = NULL;
        request rq;
        ms_gen_opts go = a.base;
        go.n_predict = (int)a.max_tokens;
        char bad[256];
        int prc = -EINVAL;
        const char *cid = NULL;
        if (memchr(line, 0, (size_t)ln)) {
            snprintf(bad, sizeof bad, "line contains a NUL byte");
        } else {
            prc = request_parse_batch_line(&rq, &req, line, idx, &go, bad, sizeof bad);
            cid = rq.custom_id;
        }
        long first = 0;
        if (cid) {
            json_t *f = json_object_get(seen, cid);
            if (f)
                first = (long)json_integer_value(f);
            else
                json_object_set_new(seen, cid, json_integer(idx));
        }
        char key[32];
        snprintf(key, sizeof key, "%ld", idx);
        json_t *was = json_object_get(done.by_line, key);
        if (was) {
            const char *wcid = json_string_value(was);
            if ((wcid == NULL) != (cid == NULL) || (cid && strcmp(cid, wcid))) {
                fprintf(stderr, "moestream batch: %s holds a result for line %ld with custom_id %s, "
                                "but line %ld of %s has %s: the input changed since (use another "
                                "output file or --overwrite)\n", a.out, idx, wcid ? wcid : "(none)",
                        idx, a.in, cid ? cid : "(none)");
                json_decref(req);
                status = 1;
                break;
            }
        }
        if (was || (cid && !first && json_object_get(done.by_cid, cid))) {
            n_skip++;
            json_decref(req);
            progress(idx, total, t0);
            continue;
        }
        json_t *rec = NULL;
        bool is_err = true;
        bool submitted = false;
        if (prc) {
            rec = error_record(idx, cid, "invalid_request", bad);
        } else if (first) {
            snprintf(bad, sizeof bad, "duplicate custom_id '%.120s' (first on line %ld): the "
                                      "results could not be told apart", cid, first);
            rec = error_record(idx, cid, "duplicate_custom_id", bad);
        } else {
            pending *p = calloc(1, sizeof *p);
            size_t n = 0;
            /* the batch's slots keep their caches: a shared prefix (the
             * system prompt, say) is reused in whole -b chunks, results as cold */
            rc = p ? ms_chat_render(ms_engine_vocab(e), rq.msgs, rq.n_msgs, true, &p->ids, &n, err, sizeof err)
                   : -ENOMEM;
            if (!p)
                snprintf(err, sizeof err, "out of memory");
            if (!rc) {
                *p = (pending){&R, idx, req, rq, p->ids, {STRBUF_INIT, STRBUF_INIT}};
                /* the copy's own arrays, not the loop's (rq points into itself) */
                if (rq.go.stop == rq.stops)
                    p->rq.go.stop = p->rq.stops;
                if (rq.custom_id == rq.line_id)
                    p->rq.custom_id = p->rq.line_id;
                ms_callbacks cb = {p_collect, NULL, NULL, p_stopped, p};
                rc = ms_batch_submit(bt, p->ids, n, &p->rq.go, &cb, on_done, err, sizeof err);
            }
            if (!rc) {
                submitted = true;
                req = NULL; /* the pending line owns it now */
            } else {
                rec = error_record(idx, cid, rc == -E2BIG ? "context_length_exceeded" : "server_error", err);
                if (p)
                    ms_free(p->ids);
                free(p);
            }
        }
        json_decref(req);
        if (submitted) {
            progress(idx, total, t0);
            continue;
        }
        if (!rec) {
            fprintf(stderr, "moestream batch: out of memory building the record for line %ld\n", idx);
            R.status = 1;
        } else {
            put_record(&R, rec, is_err, idx);
            json_decref(rec);
        }
        progress(idx, total, t0);
    }
    /* the lines still generating; on a stop (signal or failed write) they
     * are cancelled or dropped, and resume redoes them */
    while (step(bt, &most) > 0)
        ;
    if (!status)
        status = R.status;
    const long n_ok = R.n_ok, n_err = R.n_err;
    if (!status && !stop_sig && ferror(fin)) {
        fprintf(stderr, "moestream batch: cannot read %s: %s\n", a.in, strerror(errno));
        status = 1;
    }
    if (isatty(2) && total <= 0)
        fputc('\n', stderr);
    free(line);
    json_decref(seen);
    fprintf(stderr, "batch: %ld done, %ld errors, %ld skipped (already in %s) in %.1f s\n", n_ok,
            n_err, n_skip, a.out, now_s() - t0);
    ms_batch_get_stats(bt, &bs);
    if (bs.slots > 1 || a.c.verbose)
        fprintf(stderr, "batch: --parallel %d: %llu steps, up to %d sequences in one step, %.1f "
                        "tokens/s generated\n", bs.slots, (unsigned long long)bs.steps, most,
                bs.step_s > 0 ? (double)bs.generated / bs.step_s : 0.0);
    if (stop_sig) {
        fprintf(stderr, "batch: stopped by %s after line %ld; --resume finishes the job\n",
                stop_sig == SIGINT ? "SIGINT" : "SIGTERM", idx);
        status = 128 + stop_sig;
    } else if (status) {
        fprintf(stderr, "batch: stopped at line %ld; what is counted is on disk; fix the cause "
                        "and run again with --resume\n", idx);
    }
end:
    if (out.fd >= 0 && close(out.fd) != 0 && !status) {
        fprintf(stderr, "moestream batch: cannot write %s: %s\n", a.out, strerror(errno));
        status = 1;
    }
    fclose(fin);
    json_decref(done.by_line);
    json_decref(done.by_cid);
    ms_batch_destroy(bt);
    ms_engine_close(e);
    return status;
}
