/*
 * chat.c - chat template detection and rendering (see chat.h).
 *
 * Detection follows llama.cpp's llm_chat_detect_template() branch by branch,
 * including the branches for families quarry does not render, so that a
 * template is never put in a family llama.cpp would not choose for it. The
 * renderers reproduce llama.cpp's llm_chat_apply_template() output for each
 * family (checked against the expected strings of llama.cpp's
 * tests/test-chat-template.cpp in tests/test_chat.c). Zephyr, Alpaca and
 * the plain fallback have no llama.cpp test strings; their formats are
 * written out next to their renderers.
 */
#include "engine/chat.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const template_names[QUARRY_CHAT_COUNT] = {
    [QUARRY_CHAT_PLAIN] = "plain",
    [QUARRY_CHAT_CHATML] = "chatml",
    [QUARRY_CHAT_LLAMA2] = "llama2",
    [QUARRY_CHAT_LLAMA2_SYS] = "llama2-sys",
    [QUARRY_CHAT_LLAMA2_SYS_BOS] = "llama2-sys-bos",
    [QUARRY_CHAT_LLAMA2_SYS_STRIP] = "llama2-sys-strip",
    [QUARRY_CHAT_MISTRAL_V1] = "mistral-v1",
    [QUARRY_CHAT_MISTRAL_V3] = "mistral-v3",
    [QUARRY_CHAT_MISTRAL_V3_TEKKEN] = "mistral-v3-tekken",
    [QUARRY_CHAT_MISTRAL_V7] = "mistral-v7",
    [QUARRY_CHAT_MISTRAL_V7_TEKKEN] = "mistral-v7-tekken",
    [QUARRY_CHAT_LLAMA3] = "llama3",
    [QUARRY_CHAT_ZEPHYR] = "zephyr",
    [QUARRY_CHAT_PHI3] = "phi3",
    [QUARRY_CHAT_PHI4] = "phi4",
    [QUARRY_CHAT_FALCON3] = "falcon3",
    [QUARRY_CHAT_GLMEDGE] = "glmedge",
    [QUARRY_CHAT_GEMMA] = "gemma",
    [QUARRY_CHAT_MONARCH] = "monarch",
    [QUARRY_CHAT_OPENCHAT] = "openchat",
    [QUARRY_CHAT_VICUNA] = "vicuna",
    [QUARRY_CHAT_VICUNA_ORCA] = "vicuna-orca",
    [QUARRY_CHAT_DEEPSEEK] = "deepseek",
    [QUARRY_CHAT_COMMAND_R] = "command-r",
    [QUARRY_CHAT_ALPACA] = "alpaca",
};

/* Names llama.cpp accepts for families quarry does not render. */
static const char *const unrendered_names[] = {
    "orion",  "deepseek2", "deepseek3", "chatglm3",  "chatglm4",    "minicpm",
    "exaone3", "exaone4",  "rwkv-world", "granite",  "gigachat",    "megrez",
    "yandex", "bailing",   "llama4",    "smolvlm",   "hunyuan-moe", "hunyuan-dense",
    "kimi-k2", "dots1",
};

const char *quarry_chat_template_name(enum quarry_chat_template t)
{
    if ((unsigned)t >= QUARRY_CHAT_COUNT)
        return "unknown";
    return template_names[t];
}

int quarry_chat_template_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int t = 0; t < QUARRY_CHAT_COUNT; t++)
        if (strcmp(template_names[t], name) == 0)
            return t;
    return -1;
}

/* ---- detection ------------------------------------------------------------ */

struct text {
    const char *s;
    size_t n;
};

static bool has(struct text t, const char *needle)
{
    return memmem(t.s, t.n, needle, strlen(needle)) != NULL;
}

static bool starts_with(struct text t, const char *prefix)
{
    size_t n = strlen(prefix);
    return t.n >= n && memcmp(t.s, prefix, n) == 0;
}

static struct quarry_chat_choice rendered(enum quarry_chat_template t)
{
    struct quarry_chat_choice c = {t, false, NULL};
    return c;
}

static struct quarry_chat_choice unrendered(const char *llama_cpp_name)
{
    struct quarry_chat_choice c = {QUARRY_CHAT_PLAIN, true, llama_cpp_name};
    return c;
}

static struct quarry_chat_choice detect_inst(struct text t)
{
    if (has(t, "[SYSTEM_PROMPT]"))
        return rendered(QUARRY_CHAT_MISTRAL_V7);
    if (has(t, "' [INST] ' + system_message") || has(t, "[AVAILABLE_TOOLS]")) {
        /* Mistral's official v1, v3 and v3-tekken templates */
        if (has(t, " [INST]"))
            return rendered(QUARRY_CHAT_MISTRAL_V1);
        if (has(t, "\"[INST]\""))
            return rendered(QUARRY_CHAT_MISTRAL_V3_TEKKEN);
        return rendered(QUARRY_CHAT_MISTRAL_V3);
    }
    /* llama-2 and its variants */
    if (has(t, "content.strip()"))
        return rendered(QUARRY_CHAT_LLAMA2_SYS_STRIP);
    if (has(t, "bos_token + '[INST]"))
        return rendered(QUARRY_CHAT_LLAMA2_SYS_BOS);
    if (has(t, "<<SYS>>"))
        return rendered(QUARRY_CHAT_LLAMA2_SYS);
    return rendered(QUARRY_CHAT_LLAMA2);
}

struct quarry_chat_choice quarry_chat_detect(const char *tmpl, size_t len)
{
    struct text t = {tmpl ? tmpl : "", tmpl ? len : 0};
    struct quarry_chat_choice none = {QUARRY_CHAT_PLAIN, true, NULL};
    if (t.n == 0)
        return none;

    /* a text that is exactly a family name */
    for (int i = 0; i < QUARRY_CHAT_COUNT; i++)
        if (strlen(template_names[i]) == t.n && memcmp(template_names[i], t.s, t.n) == 0)
            return rendered((enum quarry_chat_template)i);
    for (size_t i = 0; i < sizeof unrendered_names / sizeof unrendered_names[0]; i++)
        if (strlen(unrendered_names[i]) == t.n && memcmp(unrendered_names[i], t.s, t.n) == 0)
            return unrendered(unrendered_names[i]);

    /* llama.cpp's marker rules, in its order */
    if (has(t, "<|im_start|>")) {
        if (has(t, "<|im_sep|>"))
            return rendered(QUARRY_CHAT_PHI4);
        if (has(t, "<end_of_utterance>"))
            return unrendered("smolvlm");
        return rendered(QUARRY_CHAT_CHATML);
    }
    if (starts_with(t, "mistral") || has(t, "[INST]"))
        return detect_inst(t);
    if (has(t, "<|assistant|>") && has(t, "<|end|>"))
        return rendered(QUARRY_CHAT_PHI3);
    if (has(t, "[gMASK]<sop>"))
        return unrendered("chatglm4");
    if (has(t, "<|assistant|>") && has(t, "<|user|>"))
        return rendered(has(t, "</s>") ? QUARRY_CHAT_FALCON3 : QUARRY_CHAT_GLMEDGE);
    if (has(t, "<|{{ item['role'] }}|>") && has(t, "<|begin_of_image|>"))
        return rendered(QUARRY_CHAT_GLMEDGE);
    if (has(t, "<|user|>") && has(t, "<|endoftext|>"))
        return rendered(QUARRY_CHAT_ZEPHYR);
    if (has(t, "bos_token + message['role']"))
        return rendered(QUARRY_CHAT_MONARCH);
    if (has(t, "<start_of_turn>"))
        return rendered(QUARRY_CHAT_GEMMA);
    if (has(t, "'\\n\\nAssistant: ' + eos_token"))
        return unrendered("orion");
    if (has(t, "GPT4 Correct "))
        return rendered(QUARRY_CHAT_OPENCHAT);
    if (has(t, "USER: ") && has(t, "ASSISTANT: "))
        return rendered(has(t, "SYSTEM: ") ? QUARRY_CHAT_VICUNA_ORCA : QUARRY_CHAT_VICUNA);
    if (has(t, "### Instruction:") && has(t, "<|EOT|>"))
        return rendered(QUARRY_CHAT_DEEPSEEK);
    if (has(t, "<|START_OF_TURN_TOKEN|>") && has(t, "<|USER_TOKEN|>"))
        return rendered(QUARRY_CHAT_COMMAND_R);
    if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>"))
        return rendered(QUARRY_CHAT_LLAMA3);
    if (has(t, "[gMASK]sop"))
        return unrendered("chatglm3");
    if (has(t, "<\xe7\x94\xa8\xe6\x88\xb7>")) /* "<用户>" */
        return unrendered("minicpm");
    if (has(t, "'Assistant: ' + message['content'] + eos_token"))
        return unrendered("deepseek2");
    if (has(t, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>") && has(t, "<\xef\xbd\x9c" "User\xef\xbd\x9c>"))
        return unrendered("deepseek3"); /* "<｜Assistant｜>", "<｜User｜>" */
    if (has(t, "[|system|]") && has(t, "[|assistant|]") && has(t, "[|endofturn|]"))
        return unrendered(has(t, "[|tool|]") ? "exaone4" : "exaone3");
    if (has(t, "rwkv-world") || has(t, "{{- 'User: ' + message['content']|trim + '\\n\\n' -}}"))
        return unrendered("rwkv-world");
    if (has(t, "<|start_of_role|>"))
        return unrendered("granite");
    if (has(t, "message['role'] + additional_special_tokens[0] + message['content'] + "
               "additional_special_tokens[1]"))
        return unrendered("gigachat");
    if (has(t, "<|role_start|>"))
        return unrendered("megrez");
    if (has(t, " \xd0\x90\xd1\x81\xd1\x81\xd0\xb8\xd1\x81\xd1\x82\xd0\xb5\xd0\xbd\xd1\x82:"))
        return unrendered("yandex"); /* " Ассистент:" */
    if (has(t, "<role>ASSISTANT</role>") && has(t, "'HUMAN'"))
        return unrendered("bailing");
    if (has(t, "<|header_start|>") && has(t, "<|header_end|>"))
        return unrendered("llama4");
    if (has(t, "<|endofuserprompt|>"))
        return unrendered("dots1");
    if (has(t, "<|startoftext|>") && has(t, "<|extra_4|>"))
        return unrendered("hunyuan-moe");
    if (has(t, "<|im_assistant|>assistant<|im_middle|>"))
        return unrendered("kimi-k2");

    /* quarry's own addition, after every llama.cpp rule */
    if (has(t, "### Instruction:") && has(t, "### Response:"))
        return rendered(QUARRY_CHAT_ALPACA);
    return none;
}

int quarry_chat_select(const char *model_tmpl, size_t model_tmpl_len, const char *override,
                       struct quarry_chat_choice *out, quarry_error *err)
{
    if (override) {
        struct quarry_chat_choice c = quarry_chat_detect(override, strlen(override));
        if (c.fallback && quarry_chat_template_from_name(override) != QUARRY_CHAT_PLAIN) {
            if (c.unsupported)
                return quarry_errorf(err, QUARRY_EUNSUPPORTED,
                                     "chat template '%s' is not supported by quarry",
                                     c.unsupported);
            return quarry_errorf(err, QUARRY_EINVAL,
                                 "unknown chat template '%.60s' (names: chatml, llama2, "
                                 "llama2-sys, llama3, zephyr, mistral-v1, mistral-v3, "
                                 "mistral-v7, alpaca, plain, ...)",
                                 override);
        }
        c.fallback = false; /* the user chose it */
        *out = c;
        return 0;
    }
    *out = quarry_chat_detect(model_tmpl, model_tmpl_len);
    return 0;
}

/* ---- rendering ------------------------------------------------------------ */

struct buf {
    char *s;
    size_t len, cap;
    bool failed;
};

static void put_n(struct buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->s, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void put(struct buf *b, const char *s)
{
    put_n(b, s, strlen(s));
}

/* isspace() of the C locale, as llama.cpp's trim uses */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Appends s without leading and trailing white space. */
static void put_trimmed(struct buf *b, const char *s)
{
    size_t start = 0, end = strlen(s);
    while (start < end && is_space(s[start]))
        start++;
    while (end > start && is_space(s[end - 1]))
        end--;
    put_n(b, s + start, end - start);
}

static bool role_is(const struct quarry_chat_message *m, const char *role)
{
    return strcmp(m->role, role) == 0;
}

static void render_llama2(struct buf *b, enum quarry_chat_template t,
                          const struct quarry_chat_message *msgs, size_t n)
{
    const bool sys_block = t != QUARRY_CHAT_LLAMA2;
    const bool bos_in_history = t == QUARRY_CHAT_LLAMA2_SYS_BOS;
    const bool strip = t == QUARRY_CHAT_LLAMA2_SYS_STRIP;
    bool inside_turn = true; /* the first [INST] has no <s>: the tokenizer adds BOS */
    put(b, "[INST] ");
    for (size_t i = 0; i < n; i++) {
        const struct quarry_chat_message *m = &msgs[i];
        if (!inside_turn) {
            inside_turn = true;
            put(b, bos_in_history ? "<s>[INST] " : "[INST] ");
        }
        const bool sys = role_is(m, "system"), user = role_is(m, "user");
        if (sys)
            put(b, sys_block ? "<<SYS>>\n" : "");
        if (strip)
            put_trimmed(b, m->content);
        else
            put(b, m->content);
        if (sys) {
            put(b, sys_block ? "\n<</SYS>>\n\n" : "\n");
        } else if (user) {
            put(b, " [/INST]");
        } else {
            put(b, "</s>");
            inside_turn = false;
        }
    }
}

static void render_mistral(struct buf *b, enum quarry_chat_template t,
                           const struct quarry_chat_message *msgs, size_t n)
{
    const char *lead = t == QUARRY_CHAT_MISTRAL_V1 ? " " : "";
    const char *trail = t == QUARRY_CHAT_MISTRAL_V3_TEKKEN ? "" : " ";
    const bool trim_assistant = t == QUARRY_CHAT_MISTRAL_V3;
    bool inside_turn = false;
    for (size_t i = 0; i < n; i++) {
        const struct quarry_chat_message *m = &msgs[i];
        if (!inside_turn) {
            put(b, lead);
            put(b, "[INST]");
            put(b, trail);
            inside_turn = true;
        }
        if (role_is(m, "system")) {
            put(b, m->content);
            put(b, "\n\n");
        } else if (role_is(m, "user")) {
            put(b, m->content);
            put(b, lead);
            put(b, "[/INST]");
        } else {
            put(b, trail);
            if (trim_assistant)
                put_trimmed(b, m->content);
            else
                put(b, m->content);
            put(b, "</s>");
            inside_turn = false;
        }
    }
}

static void render_mistral_v7(struct buf *b, enum quarry_chat_template t,
                              const struct quarry_chat_message *msgs, size_t n)
{
    const char *sp = t == QUARRY_CHAT_MISTRAL_V7 ? " " : "";
    for (size_t i = 0; i < n; i++) {
        const struct quarry_chat_message *m = &msgs[i];
        if (role_is(m, "system")) {
            put(b, "[SYSTEM_PROMPT]");
            put(b, sp);
            put(b, m->content);
            put(b, "[/SYSTEM_PROMPT]");
        } else if (role_is(m, "user")) {
            put(b, "[INST]");
            put(b, sp);
            put(b, m->content);
            put(b, "[/INST]");
        } else {
            put(b, sp);
            put(b, m->content);
            put(b, "</s>");
        }
    }
}

/* Roles wrapped as "<|role|>\n" + content + end, as ChatML, Zephyr, Phi-3,
 * Falcon-3 and GLM-Edge do (with different wrappers). */
static void render_tagged(struct buf *b, const struct quarry_chat_message *msgs, size_t n,
                          const char *open, const char *close_role, const char *end,
                          bool add_gen, const char *gen)
{
    for (size_t i = 0; i < n; i++) {
        put(b, open);
        put(b, msgs[i].role);
        put(b, close_role);
        put(b, msgs[i].content);
        put(b, end);
    }
    if (add_gen)
        put(b, gen);
}

static void render_gemma(struct buf *b, const struct quarry_chat_message *msgs, size_t n,
                         bool add_gen)
{
    /* no system role: system text is merged into the next user turn */
    struct buf system = {0};
    for (size_t i = 0; i < n; i++) {
        const struct quarry_chat_message *m = &msgs[i];
        if (role_is(m, "system")) {
            put_trimmed(&system, m->content);
            continue;
        }
        const bool model = role_is(m, "assistant");
        put(b, "<start_of_turn>");
        put(b, model ? "model" : m->role);
        put(b, "\n");
        if (system.len > 0 && !model) {
            put_n(b, system.s, system.len);
            put(b, "\n\n");
            system.len = 0;
        }
        put_trimmed(b, m->content);
        put(b, "<end_of_turn>\n");
    }
    if (system.failed)
        b->failed = true;
    free(system.s);
    if (add_gen)
        put(b, "<start_of_turn>model\n");
}

static void render_openchat(struct buf *b, const struct quarry_chat_message *msgs, size_t n,
                            bool add_gen)
{
    for (size_t i = 0; i < n; i++) {
        const struct quarry_chat_message *m = &msgs[i];
        if (role_is(m, "system")) {
            put(b, m->content);
        } else {
            put(b, "GPT4 Correct ");
            if (m->role[0]) {
                char first[2] = {m->role[0], 0};
                if (first[0] >= 'a' && first[0] <= 'z')
                    first[0] = (char)(first[0] - 'a' + 'A');
                put(b, first);
                put(b, m->role + 1);
            }
            put(b, ": ");
            put(b, m->content);
        }
        put(b, "<|end_of_turn|>");
    }
    if (add_gen)
        put(b, "GPT4 Correct Assistant:");
}

static void render_vicuna(struct buf *b, bool orca, const struct quarry_chat_message *msgs,
                          size_t n, bool add_gen)
{
    for (size_t i = 0; i < n; i++) {
        const struct quarry_chat_message *m = &msgs[i];
        if (role_is(m, "system")) {
            put(b, orca ? "SYSTEM: " : "");
            put(b, m->content);
            put(b, orca ? "\n" : "\n\n");
        } else if (role_is(m, "user")) {
            put(b, "USER: ");
            put(b, m->content);
            put(b, "\n");
        } else if (role_is(m, "assistant")) {
            put(b, "ASSISTANT: ");
            put(b, m->content);
            put(b, "</s>\n");
        }
    }
    if (add_gen)
        put(b, "ASSISTANT:");
}

static void render_deepseek(struct buf *b, const struct quarry_chat_message *msgs, size_t n,
                            bool add_gen)
{
    for (size_t i = 0; i < n; i++) {
        const struct quarry_chat_message *m = &msgs[i];
        if (role_is(m, "system")) {
            put(b, m->content);
        } else if (role_is(m, "user")) {
            put(b, "### Instruction:\n");
            put(b, m->content);
            put(b, "\n");
        } else if (role_is(m, "assistant")) {
            put(b, "### Response:\n");
            put(b, m->content);
            put(b, "\n<|EOT|>\n");
        }
    }
    if (add_gen)
        put(b, "### Response:\n");
}

static void render_command_r(struct buf *b, const struct quarry_chat_message *msgs, size_t n,
                             bool add_gen)
{
    for (size_t i = 0; i < n; i++) {
        const struct quarry_chat_message *m = &msgs[i];
        const char *tag = role_is(m, "system")      ? "<|SYSTEM_TOKEN|>"
                          : role_is(m, "user")      ? "<|USER_TOKEN|>"
                          : role_is(m, "assistant") ? "<|CHATBOT_TOKEN|>"
                                                    : NULL;
        if (!tag)
            continue;
        put(b, "<|START_OF_TURN_TOKEN|>");
        put(b, tag);
        put_trimmed(b, m->content);
        put(b, "<|END_OF_TURN_TOKEN|>");
    }
    if (add_gen)
        put(b, "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
}

static void render_llama3(struct buf *b, const struct quarry_chat_message *msgs, size_t n,
                          bool add_gen)
{
    for (size_t i = 0; i < n; i++) {
        put(b, "<|start_header_id|>");
        put(b, msgs[i].role);
        put(b, "<|end_header_id|>\n\n");
        put_trimmed(b, msgs[i].content);
        put(b, "<|eot_id|>");
    }
    if (add_gen)
        put(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void render_monarch(struct buf *b, const struct quarry_chat_message *msgs, size_t n,
                           bool add_gen)
{
    for (size_t i = 0; i < n; i++) {
        put(b, i == 0 ? "" : "<s>"); /* the tokenizer adds the first BOS */
        put(b, msgs[i].role);
        put(b, "\n");
        put(b, msgs[i].content);
        put(b, "</s>\n");
    }
    if (add_gen)
        put(b, "<s>assistant\n");
}

/*
 * Alpaca (Stanford Alpaca's prompt; not a llama.cpp family):
 *   <system text, or the standard preamble below>\n\n
 *   ### Instruction:\n<user>\n\n
 *   ### Response:\n<assistant>\n\n
 *   ### Response:\n                       (generation prompt)
 */
static void render_alpaca(struct buf *b, const struct quarry_chat_message *msgs, size_t n,
                          bool add_gen)
{
    bool has_system = false;
    for (size_t i = 0; i < n; i++)
        has_system |= role_is(&msgs[i], "system");
    if (!has_system)
        put(b, "Below is an instruction that describes a task. Write a response that "
               "appropriately completes the request.\n\n");
    for (size_t i = 0; i < n; i++) {
        const struct quarry_chat_message *m = &msgs[i];
        if (role_is(m, "system")) {
            put(b, m->content);
            put(b, "\n\n");
        } else if (role_is(m, "user")) {
            put(b, "### Instruction:\n");
            put(b, m->content);
            put(b, "\n\n");
        } else if (role_is(m, "assistant")) {
            put(b, "### Response:\n");
            put(b, m->content);
            put(b, "\n\n");
        }
    }
    if (add_gen)
        put(b, "### Response:\n");
}

/*
 * Plain (quarry's fallback when the template is not recognised):
 *   <system>\n\n
 *   User: <user>\n
 *   Assistant: <assistant>\n
 *   <other role>: <content>\n
 *   Assistant:                            (generation prompt)
 */
static void render_plain(struct buf *b, const struct quarry_chat_message *msgs, size_t n,
                         bool add_gen)
{
    for (size_t i = 0; i < n; i++) {
        const struct quarry_chat_message *m = &msgs[i];
        if (role_is(m, "system")) {
            put(b, m->content);
            put(b, "\n\n");
            continue;
        }
        put(b, role_is(m, "user") ? "User" : role_is(m, "assistant") ? "Assistant" : m->role);
        put(b, ": ");
        put(b, m->content);
        put(b, "\n");
    }
    if (add_gen)
        put(b, "Assistant:");
}

int quarry_chat_render(enum quarry_chat_template t, const struct quarry_chat_message *msgs,
                       size_t n, bool add_gen, char **out, size_t *out_len, quarry_error *err)
{
    *out = NULL;
    if (out_len)
        *out_len = 0;
    if ((unsigned)t >= QUARRY_CHAT_COUNT)
        return quarry_errorf(err, QUARRY_EINVAL, "chat: unknown template id %d", (int)t);
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return quarry_errorf(err, QUARRY_EINVAL, "chat: message %zu has no %s", i,
                                 msgs[i].role ? "content" : "role");
    struct buf b = {0};
    put(&b, ""); /* an empty conversation still gives a string */
    switch (t) {
    case QUARRY_CHAT_CHATML:
        render_tagged(&b, msgs, n, "<|im_start|>", "\n", "<|im_end|>\n", add_gen,
                      "<|im_start|>assistant\n");
        break;
    case QUARRY_CHAT_LLAMA2:
    case QUARRY_CHAT_LLAMA2_SYS:
    case QUARRY_CHAT_LLAMA2_SYS_BOS:
    case QUARRY_CHAT_LLAMA2_SYS_STRIP:
        render_llama2(&b, t, msgs, n); /* the [/INST] already prompts the answer */
        break;
    case QUARRY_CHAT_MISTRAL_V1:
    case QUARRY_CHAT_MISTRAL_V3:
    case QUARRY_CHAT_MISTRAL_V3_TEKKEN:
        render_mistral(&b, t, msgs, n);
        break;
    case QUARRY_CHAT_MISTRAL_V7:
    case QUARRY_CHAT_MISTRAL_V7_TEKKEN:
        render_mistral_v7(&b, t, msgs, n);
        break;
    case QUARRY_CHAT_LLAMA3:
        render_llama3(&b, msgs, n, add_gen);
        break;
    case QUARRY_CHAT_ZEPHYR:
        /* "<|role|>\n" + content + "<|endoftext|>\n"; llama.cpp writes the
         * literal <|endoftext|> (StableLM-2-Zephyr's EOS), not eos_token */
        render_tagged(&b, msgs, n, "<|", "|>\n", "<|endoftext|>\n", add_gen, "<|assistant|>\n");
        break;
    case QUARRY_CHAT_PHI3:
        render_tagged(&b, msgs, n, "<|", "|>\n", "<|end|>\n", add_gen, "<|assistant|>\n");
        break;
    case QUARRY_CHAT_PHI4:
        render_tagged(&b, msgs, n, "<|im_start|>", "<|im_sep|>", "<|im_end|>", add_gen,
                      "<|im_start|>assistant<|im_sep|>");
        break;
    case QUARRY_CHAT_FALCON3:
        render_tagged(&b, msgs, n, "<|", "|>\n", "\n", add_gen, "<|assistant|>\n");
        break;
    case QUARRY_CHAT_GLMEDGE:
        render_tagged(&b, msgs, n, "<|", "|>\n", "", add_gen, "<|assistant|>");
        break;
    case QUARRY_CHAT_GEMMA:
        render_gemma(&b, msgs, n, add_gen);
        break;
    case QUARRY_CHAT_MONARCH:
        render_monarch(&b, msgs, n, add_gen);
        break;
    case QUARRY_CHAT_OPENCHAT:
        render_openchat(&b, msgs, n, add_gen);
        break;
    case QUARRY_CHAT_VICUNA:
    case QUARRY_CHAT_VICUNA_ORCA:
        render_vicuna(&b, t == QUARRY_CHAT_VICUNA_ORCA, msgs, n, add_gen);
        break;
    case QUARRY_CHAT_DEEPSEEK:
        render_deepseek(&b, msgs, n, add_gen);
        break;
    case QUARRY_CHAT_COMMAND_R:
        render_command_r(&b, msgs, n, add_gen);
        break;
    case QUARRY_CHAT_ALPACA:
        render_alpaca(&b, msgs, n, add_gen);
        break;
    case QUARRY_CHAT_PLAIN:
    case QUARRY_CHAT_COUNT:
        render_plain(&b, msgs, n, add_gen);
        break;
    }
    if (b.failed) {
        free(b.s);
        return quarry_errorf(err, QUARRY_ENOMEM, "chat: out of memory");
    }
    *out = b.s;
    if (out_len)
        *out_len = b.len;
    return 0;
}
