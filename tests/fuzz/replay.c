/* One libFuzzer harness of this folder, run without libFuzzer by `make check`
 * (and so under the sanitizers when the build has them): every file of the
 * harness's committed corpus, then deterministic damage to each, the kind a
 * cut-off copy, a bad disk or a hostile peer gives a reader:
 *
 *   - truncations: every length up to DENSE_CUTS bytes (where the headers
 *     are), then SPREAD_CUTS lengths spread over the rest;
 *   - MUTATIONS copies with one to four edits each: a bit flipped, a byte set
 *     to a boundary or a syntax character, a 32-bit field set to a boundary
 *     (both byte orders), a span deleted or repeated, a huge or negative
 *     number inserted.
 *
 * The edits come from a fixed seed, so a failure repeats; the reproducer is
 * written to $TMPDIR (or /tmp) before each input runs, named in the report.
 * Exploring new inputs is libFuzzer's job (tests/fuzz/run.sh); this is the
 * regression run of what it found, with the sanitizers of the build that
 * runs the suites. Built once per harness with -DFUZZ_NAME=<name>. */
#define _GNU_SOURCE /* nftw */
#define STR_(x) #x
#define STR(x) STR_(x)
#define HARNESS_(n) STR(fuzz_##n.c)
#define HARNESS(n) HARNESS_(n)
#include HARNESS(FUZZ_NAME)

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>

enum { MUTATIONS = 100, DENSE_CUTS = 128, SPREAD_CUTS = 128, MAX_GROWTH = 128 };

/* libconfig 1.5's scanner leaks on some malformed input whatever its caller
 * does (tests/fuzz/lsan.supp says which); the replays run under make check's
 * ASAN_OPTIONS, so they carry the same suppressions in the binary. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

static uint64_t rs = 0x9e3779b97f4a7c15u;

static uint64_t rnd(uint64_t n)
{
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return n ? rs % n : 0;
}

static char last[1100]; /* the input running now, for a crash's report */
static long runs;

static void run(const uint8_t *d, size_t n)
{
    /* an input of its own, not the harness's scratch file, so that what
     * crashed is kept as it was given */
    FILE *f = fopen(last, "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f)) {
        fprintf(stderr, "replay: cannot write %s\n", last);
        exit(1);
    }
    LLVMFuzzerTestOneInput(d, n);
    runs++;
}

/* one random edit of b[0..*n) in place (b has MAX_GROWTH bytes to spare) */
static void edit(uint8_t *b, size_t *n)
{
    static const uint8_t bytes[] = {0,   1,   0x7f, 0x80, 0xff, '0', '9', '-', '\n', '"',
                                    '\\', '{', '}',  ';',  '=',  ',', '.', 'e', '\t', '@'};
    static const uint32_t words[] = {0, 1, 0xffffffffu, 0x7fffffffu, 0x80000000u, 0x10000u};
    static const char *const numbers[] = {"99999999999999999999", "-1", "1e308", "nan",
                                          "4294967297", "-0", "0x7fffffff"};
    size_t at = *n ? (size_t)rnd(*n) : 0;
    switch (rnd(6)) {
    case 0:
        if (*n)
            b[at] ^= (uint8_t)(1u << rnd(8));
        break;
    case 1:
        if (*n)
            b[at] = bytes[rnd(sizeof bytes)];
        break;
    case 2:
        if (*n >= 4) {
            uint32_t w = words[rnd(sizeof words / sizeof *words)];
            at = (size_t)rnd(*n - 3);
            int be = (int)rnd(2);
            for (int k = 0; k < 4; k++)
                b[at + k] = (uint8_t)(w >> (8 * (be ? 3 - k : k)));
        }
        break;
    case 3: { /* delete a span */
        size_t len = 1 + (size_t)rnd(16);
        if (at + len > *n)
            len = *n - at;
        memmove(b + at, b + at + len, *n - at - len);
        *n -= len;
        break;
    }
    case 4: { /* insert a number */
        const char *s = numbers[rnd(sizeof numbers / sizeof *numbers)];
        size_t len = strlen(s);
        memmove(b + at + len, b + at, *n - at);
        memcpy(b + at, s, len);
        *n += len;
        break;
    }
    default: { /* repeat a span where it is */
        size_t len = 1 + (size_t)rnd(32);
        if (at + len > *n)
            len = *n - at;
        memmove(b + at + len, b + at, *n - at);
        *n += len;
        break;
    }
    }
}

static void replay(const uint8_t *d, size_t n)
{
    run(d, n);
    for (size_t k = 0; k < n && k < DENSE_CUTS; k++)
        run(d, k);
    if (n > DENSE_CUTS)
        for (size_t k = 0; k < SPREAD_CUTS; k++)
            run(d, DENSE_CUTS + k * (n - DENSE_CUTS) / SPREAD_CUTS);
    /* growth stays bounded: each edit adds at most 32 bytes and there are
     * at most four */
    uint8_t *b = malloc(n + MAX_GROWTH + 1);
    if (!b)
        exit(1);
    for (int m = 0; m < MUTATIONS; m++) {
        memcpy(b, d, n);
        size_t len = n;
        for (int e = 1 + (int)rnd(4); e > 0; e--)
            edit(b, &len);
        run(b, len);
    }
    free(b);
}

static int rm_one(const char *p, const struct stat *s, int flag, struct FTW *f)
{
    (void)s, (void)flag, (void)f;
    return remove(p);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(void)
{
    const char *name = STR(FUZZ_NAME);
    const char *src = getenv("DLAS_SRCDIR") ? getenv("DLAS_SRCDIR") : ".";
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src, name);
    struct dirent **ent;
    int n = scandir(dir, &ent, NULL, by_name);
    if (n < 0) {
        fprintf(stderr, "replay %s: cannot read the corpus %s (set DLAS_SRCDIR)\n", name, dir);
        return 1;
    }
    const char *t = getenv("TMPDIR");
    snprintf(last, sizeof last, "%s/dlas-replay-%s-%ld.input", t ? t : "/tmp", name, (long)getpid());
    /* said first: a crash under the sanitizers ends the process */
    fprintf(stderr, "replay %s: each input is written to %s first (after a crash, "
            "that file is the reproducer)\n", name, last);
    int files = 0;
    for (int i = 0; i < n; i++) {
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, ent[i]->d_name);
        struct stat st;
        FILE *f;
        if (ent[i]->d_name[0] != '.' && !stat(p, &st) && S_ISREG(st.st_mode) &&
            (f = fopen(p, "rb"))) {
            uint8_t *d = malloc((size_t)st.st_size + 1);
            size_t got = d ? fread(d, 1, (size_t)st.st_size, f) : 0;
            fclose(f);
            if (!d || got != (size_t)st.st_size) {
                fprintf(stderr, "replay %s: cannot read %s\n", name, p);
                return 1;
            }
            replay(d, got);
            free(d);
            files++;
        }
        free(ent[i]);
    }
    free(ent);
    if (files == 0) {
        fprintf(stderr, "replay %s: no input in %s\n", name, dir);
        return 1;
    }
    printf("replay %s: %d corpus files, %ld inputs, no crash\n", name, files, runs);
    remove(last);
    if (fz_dir[0])
        nftw(fz_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
