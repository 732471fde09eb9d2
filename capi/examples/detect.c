/* aural from C: sound event detection on a buffer of float samples.
 *
 *   cc detect.c -I capi/include -L target/release -laural_capi -o detect
 *   ./detect SAMPLES.f32 [SAMPLE_RATE [MODEL_DIR]]
 *
 * SAMPLES.f32 holds mono little-endian float32 samples (e.g. `sox clip.wav -t f32 -c 1 clip.f32`).
 * Without MODEL_DIR the builtin demo model runs. Prints the clip scores, then one line per event
 * (onset, offset, label), then the AST embedding check when AURAL_AST_DIR is set. */
#include <stdio.h>
#include <stdlib.h>

#include "aural.h"

static int fail(const char *what) {
    fprintf(stderr, "%s failed: %s\n", what, aural_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SAMPLES.f32 [SAMPLE_RATE [MODEL_DIR]]\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f) / sizeof(float);
    fseek(f, 0, SEEK_SET);
    float *wave = malloc(n * sizeof(float));
    if (!wave || fread(wave, sizeof(float), n, f) != n) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    fclose(f);
    uint32_t rate = argc > 2 ? (uint32_t)atoi(argv[2]) : 16000;

    AuralDetector *det = NULL;
    if (aural_detector_load(argc > 3 ? argv[3] : NULL, "cpu", &det) != AURAL_OK) return fail("aural_detector_load");
    size_t classes = 0;
    double hop = 0;
    aural_detector_info(det, &classes, NULL, &hop);
    printf("aural %s: %zu classes, %.6f s per frame\n", aural_version(), classes, hop);

    AuralDetection *res = NULL;
    if (aural_detector_run(det, wave, n, rate, &res) != AURAL_OK) return fail("aural_detector_run");
    const float *weak = NULL;
    size_t k = 0;
    aural_detection_weak(res, &k, &weak);
    for (size_t c = 0; c < k; c++) {
        const char *name = NULL;
        aural_detector_class_name(det, c, &name);
        printf("weak %s %.6f\n", name, weak[c]);
    }
    size_t frames = 0, kk = 0;
    const float *strong = NULL;
    aural_detection_strong(res, &frames, &kk, &strong);
    double sum = 0;
    for (size_t i = 0; i < frames * kk; i++) sum += strong[i];
    printf("strong %zu x %zu sum %.6f\n", frames, kk, sum);
    size_t ne = 0;
    aural_detection_num_events(res, &ne);
    for (size_t i = 0; i < ne; i++) {
        AuralEvent e;
        const char *name = NULL;
        aural_detection_event(res, i, &e);
        aural_detector_class_name(det, e.class_index, &name);
        printf("event %.3f %.3f %s\n", e.onset, e.offset, name);
    }
    /* errors are status codes and a message, never a crash */
    AuralDetection *bad = NULL;
    if (aural_detector_run(det, NULL, 10, rate, &bad) != AURAL_INVALID_ARGUMENT || bad != NULL) return 3;
    printf("error %s\n", aural_last_error());
    aural_detection_free(res);
    aural_detector_free(det);

    const char *ast_dir = getenv("AURAL_AST_DIR");
    if (ast_dir) {
        AuralAst *ast = NULL;
        if (aural_ast_load(ast_dir, "cpu", &ast) != AURAL_OK) return fail("aural_ast_load");
        AuralEmbedding *emb = NULL;
        if (aural_ast_embed(ast, wave, n, rate, -1, 1, &emb) != AURAL_OK) return fail("aural_ast_embed");
        size_t rows = 0, dim = 0;
        const float *x = NULL;
        aural_embedding_data(emb, &rows, &dim, &x);
        printf("pooled %zu x %zu first %.6f last %.6f\n", rows, dim, x[0], x[rows * dim - 1]);
        aural_embedding_free(emb);
        aural_ast_free(ast);
    }
    free(wave);
    return 0;
}
