/* The architecture table: one row per model family, as data. The forward pass reads only the
 * flags; adding a Llama-family architecture is adding a row here. */
#include "baimo/model.h"

#include <string.h>

static const bm_arch archs[] = {
    /* Llama 2/3, Yi, DeepSeek-LLM (llama layout), Mistral: GGUF stores Q/K permuted for
     * interleaved RoPE. */
    {"llama", "LlamaForCausalLM", 0},
    {"mistral", "MistralForCausalLM", 0},
    /* Qwen1.5/2/2.5: biases on q/k/v, NeoX RoPE. */
    {"qwen2", "Qwen2ForCausalLM", BM_ARCH_QKV_BIAS | BM_ARCH_ROPE_NEOX},
    /* Qwen3: per-head RMSNorm on q and k before RoPE, no biases. */
    {"qwen3", "Qwen3ForCausalLM", BM_ARCH_QK_NORM | BM_ARCH_ROPE_NEOX},
    /* Baichuan2-7B: fused W_pack in HF checkpoints, NormHead output. */
    {"baichuan", "BaichuanForCausalLM", BM_ARCH_FUSED_QKV | BM_ARCH_NORM_HEAD},
    /* InternLM2: fused, grouped wqkv in HF checkpoints. */
    {"internlm2", "InternLM2ForCausalLM", BM_ARCH_FUSED_QKV},
};

const bm_arch *bm_arch_find(const char *name) {
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(archs[i].name, name)) return &archs[i];
    return NULL;
}

const bm_arch *bm_arch_find_hf(const char *hf_class) {
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (archs[i].hf_class && !strcmp(archs[i].hf_class, hf_class)) return &archs[i];
    if (!strcmp(hf_class, "BaiChuanForCausalLM")) return bm_arch_find("baichuan");
    return NULL;
}

const char *bm_arch_list(void) { return "llama, mistral, qwen2, qwen3, baichuan, internlm2"; }
