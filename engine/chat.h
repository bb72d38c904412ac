/*
 * chat.h - turning a conversation into prompt text with a model's chat
 * template.
 *
 * quarry does not run Jinja. Like llama.cpp's llama_chat_apply_template(), it
 * recognises the template family from marker substrings of the model's
 * `tokenizer.chat_template` (llama.cpp's llm_chat_detect_template rules, in
 * the same order, so a template is put in the same family as llama.cpp puts
 * it) and renders that family with hand-written code that produces exactly
 * llama.cpp's text. Families: ChatML, llama-2 [INST] (with its three system /
 * BOS / strip variants), Mistral v1 / v3 / v3-tekken / v7 / v7-tekken,
 * llama-3, Zephyr, Phi-3, Phi-4, Falcon-3, GLM-Edge, Gemma, Monarch, OpenChat,
 * Vicuna (and Orca-Vicuna), DeepSeek, Command-R, plus two of quarry's own:
 * Alpaca ("### Instruction:" / "### Response:", which llama.cpp does not
 * have) and a plain "User: / Assistant:" format used when nothing matches.
 *
 * A template that matches nothing (or that llama.cpp would put in a family
 * quarry does not render) falls back to the plain format; the choice says so,
 * so the caller can tell the user once.
 */
#ifndef QUARRY_CHAT_H
#define QUARRY_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/error.h"

enum quarry_chat_template {
    QUARRY_CHAT_PLAIN = 0,            /* quarry's fallback */
    QUARRY_CHAT_CHATML,
    QUARRY_CHAT_LLAMA2,               /* [INST] without <<SYS>> (system text prefixed) */
    QUARRY_CHAT_LLAMA2_SYS,           /* [INST] <<SYS>>...<</SYS>> */
    QUARRY_CHAT_LLAMA2_SYS_BOS,       /* ... and <s> before each later [INST] */
    QUARRY_CHAT_LLAMA2_SYS_STRIP,     /* ... and contents stripped of spaces */
    QUARRY_CHAT_MISTRAL_V1,
    QUARRY_CHAT_MISTRAL_V3,
    QUARRY_CHAT_MISTRAL_V3_TEKKEN,
    QUARRY_CHAT_MISTRAL_V7,
    QUARRY_CHAT_MISTRAL_V7_TEKKEN,
    QUARRY_CHAT_LLAMA3,
    QUARRY_CHAT_ZEPHYR,
    QUARRY_CHAT_PHI3,
    QUARRY_CHAT_PHI4,
    QUARRY_CHAT_FALCON3,
    QUARRY_CHAT_GLMEDGE,
    QUARRY_CHAT_GEMMA,
    QUARRY_CHAT_MONARCH,
    QUARRY_CHAT_OPENCHAT,
    QUARRY_CHAT_VICUNA,
    QUARRY_CHAT_VICUNA_ORCA,
    QUARRY_CHAT_DEEPSEEK,
    QUARRY_CHAT_COMMAND_R,
    QUARRY_CHAT_ALPACA,               /* quarry's own (not in llama.cpp) */
    QUARRY_CHAT_COUNT
};

struct quarry_chat_message {
    const char *role;                 /* "system", "user", "assistant", ... */
    const char *content;
};

/* llama.cpp's name for a family ("chatml", "llama2-sys", "llama3", "zephyr",
 * "mistral-v7", ...; quarry's own: "alpaca", "plain"). */
const char *quarry_chat_template_name(enum quarry_chat_template t);
/* The family with that exact name, or -1. */
int quarry_chat_template_from_name(const char *name);

struct quarry_chat_choice {
    enum quarry_chat_template tmpl;
    bool fallback;            /* nothing rendered by quarry matched: tmpl is PLAIN */
    const char *unsupported;  /* when llama.cpp knows the family but quarry does not
                                 render it: llama.cpp's name for it ("gemma3"...) */
};

/* Detects the family of a template text (len bytes, need not be NUL-terminated;
 * NULL or empty: fallback). As in llama.cpp, a text that is exactly a family
 * name selects that family. */
struct quarry_chat_choice quarry_chat_detect(const char *tmpl, size_t len);

/* The family to use: override (a family name, or a template text to detect
 * from) when non-NULL, else detected from the model's template. An override
 * that names or matches nothing is QUARRY_EINVAL (the user asked for it). */
int quarry_chat_select(const char *model_tmpl, size_t model_tmpl_len, const char *override,
                       struct quarry_chat_choice *out, quarry_error *err);

/* Renders n messages (+ the assistant header when add_generation_prompt and
 * the family has one) into a malloc'd NUL-terminated string the caller frees.
 * Messages with a NULL role or content are QUARRY_EINVAL. */
int quarry_chat_render(enum quarry_chat_template t, const struct quarry_chat_message *msgs,
                       size_t n, bool add_generation_prompt, char **out, size_t *out_len,
                       quarry_error *err);

#endif
