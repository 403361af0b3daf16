/* Chat templates: a Jinja subset interpreter sufficient for the real templates models ship
 * (Qwen, Llama 3, DeepSeek, GLM, Mistral, Gemma, Phi). Context is a JSON object (Jansson)
 * with messages, tools, add_generation_prompt, bos_token, eos_token, ... Rendering follows
 * Hugging Face apply_chat_template (trim_blocks and lstrip_blocks on, as transformers sets). */
#ifndef BAIMO_TEMPLATE_H
#define BAIMO_TEMPLATE_H

#include "baimo/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_tmpl bm_tmpl;

/* Parses source[0..len). A syntax error gives BM_EFORMAT with "template:LINE:COL: ...".
 * Returns owned; free with bm_tmpl_free(). A parsed template may be rendered concurrently. */
bm_status bm_tmpl_parse(const char *source, size_t len, bm_tmpl **out, bm_err *err);
void bm_tmpl_free(bm_tmpl *t);
/* Renders with the context given as JSON text. *out is malloc'd NUL-terminated (free()).
 * raise_exception() in the template gives BM_EINVAL with its message. */
bm_status bm_tmpl_render_json(const bm_tmpl *t, const char *context_json, char **out,
                              size_t *n_out, bm_err *err);
/* Same with the context as a Jansson object (borrowed; a JSON object or NULL for none).
 * Runtime errors other than raise_exception: BM_EINVAL "template:LINE:COL: ..." with the
 * message @huggingface/jinja gives; limits exceeded: BM_ENOMEM / BM_EINVAL naming the limit. */
struct json_t;
bm_status bm_tmpl_render(const bm_tmpl *t, const struct json_t *context, char **out,
                         size_t *n_out, bm_err *err);

#ifdef __cplusplus
}
#endif
#endif
