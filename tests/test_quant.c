/* test_quant.c - the scalar reference against the golden dequantization
 * vectors (../shared/golden/dequant: first rows of one tensor per type,
 * dequantized by two independent references that agree bit for bit), plus
 * activation quantization and dot-product properties on seeded inputs. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gguf.h"
#include "quant.h"
#include "quant_blocks.h"

static const char *golden_dir(void)
{
    const char *d = getenv("MOESTREAM_GOLDEN");
    return d && *d ? d : "../shared/golden";
}

static void test_golden_dequant(void **state)
{
    (void)state;
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/dequant/index.json", golden_dir());
    json_error_t je;
    json_t *idx = json_load_file(path, 0, &je);
    if (!idx)
        fail_msg("cannot read %s: %s", path, je.text);
    size_t n_types = json_array_size(idx);
    assert_true(n_types >= 18);
    int bad_types = 0;
    for (size_t k = 0; k < n_types; k++) {
        json_t *e = json_array_get(idx, k);
        const char *model = json_string_value(json_object_get(e, "model"));
        const char *tensor = json_string_value(json_object_get(e, "tensor"));
        const char *file = json_string_value(json_object_get(e, "file"));
        int type = (int)json_integer_value(json_object_get(e, "ggml_type_id"));
        int64_t values = json_integer_value(json_object_get(e, "values"));
        int64_t boff = json_integer_value(json_object_get(e, "byte_offset_in_tensor"));
        snprintf(path, sizeof path, "%s/models/%s", golden_dir(), model);
        gguf_file *g = NULL;
        if (gguf_open(&g, path, err, sizeof err))
            fail_msg("%s", err);
        const gguf_tensor *t = gguf_find_tensor(g, tensor);
        assert_non_null(t);
        assert_int_equal((int)t->type, type);
        size_t nb = quant_row_bytes(type, values);
        assert_true(nb > 0);
        uint8_t *raw = malloc(nb);
        assert_int_equal(gguf_read(g, t->part, t->offset + (uint64_t)boff, raw, nb, err, sizeof err), 0);
        float *got = malloc((size_t)values * 4), *want = malloc((size_t)values * 4);
        assert_int_equal(quant_dequantize_row(type, raw, got, values), 0);
        snprintf(path, sizeof path, "%s/dequant/%s", golden_dir(), file);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        assert_int_equal(fread(want, 4, (size_t)values, f), (size_t)values);
        fclose(f);
        int64_t first = -1, nbad = 0;
        for (int64_t i = 0; i < values; i++)
            if (memcmp(&got[i], &want[i], 4) != 0) {
                if (first < 0)
                    first = i;
                nbad++;
            }
        printf("MEASURE dequant %-8s %s %s: %lld/%lld values bit-exact%s\n", quant_info(type)->name,
               model, tensor, (long long)(values - nbad), (long long)values, nbad ? "  <-- MISMATCH" : "");
        if (nbad) {
            printf("  first mismatch at %lld: got %.9g want %.9g\n", (long long)first,
                   (double)got[first], (double)want[first]);
            bad_types++;
        }
        free(raw);
        free(got);
        free(want);
        gguf_close(g);
    }
    json_decref(idx);
    assert_int_equal(bad_types, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_dequant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
