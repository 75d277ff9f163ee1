/* fuzz_gguf.c - libFuzzer harness for the GGUF reader and the model binding:
 * any byte string, written to a file, must open cleanly or be refused with a
 * message; never crash, hang or leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gguf.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/fuzz-gguf-%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    char err[512];
    gguf_file *g = NULL;
    if (gguf_open(&g, path, err, sizeof err) == 0) {
        for (uint64_t i = 0; i < g->n_tensors && i < 4; i++) {
            uint8_t buf[64];
            const gguf_tensor *t = &g->tensors[i];
            gguf_read(g, t->part, t->offset, buf, t->nbytes < 64 ? t->nbytes : 64, err, sizeof err);
        }
        gguf_close(g);
        model_opts mo;
        model_opts_default(&mo);
        mo.bind_only = true;
        model *m = NULL;
        if (model_load(&m, path, &mo, err, sizeof err) == 0)
            model_free(m);
    }
    return 0;
}
