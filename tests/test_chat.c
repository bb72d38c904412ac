/*
 * test_chat.c - chat template detection and rendering against llama.cpp.
 *
 * The conversation, the template texts (real models' tokenizer.chat_template
 * strings) and the expected prompts are those of llama.cpp's
 * tests/test-chat-template.cpp (the non-Jinja "expected_output" of each case):
 * detecting the family from the template and rendering must give exactly
 * llama.cpp's text. Zephyr and Alpaca have no llama.cpp case; their expected
 * strings are written from the Jinja template / the Alpaca prompt format.
 * The Command-R template is shortened (its unused branches removed); its
 * markers are intact.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat.h"

static const struct quarry_chat_message conversation[] = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
    {"assistant", "   I am an assistant   "},
    {"user", "Another question"},
};
#define N_CONV (sizeof conversation / sizeof conversation[0])

struct chat_case {
    const char *name;
    enum quarry_chat_template family;
    const char *tmpl;
    const char *expected;
};

static const struct chat_case cases[] = {
    {"teknium/OpenHermes-2.5-Mistral-7B", QUARRY_CHAT_CHATML,
     "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
     "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
     "'<|im_start|>assistant\\n' }}{% endif %}",
     "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_"
     "end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are "
     "you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   "
     "<|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n"},
    {"mistralai/Mistral-7B-Instruct-v0.2 (pre-v1, no system prompt)", QUARRY_CHAT_LLAMA2,
     "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
     "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
     "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ "
     "'[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' "
     "%}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and "
     "assistant roles are supported!') }}{% endif %}{% endfor %}",
     "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you "
     "[/INST]   I am an assistant   </s>[INST] Another question [/INST]"},
    {"TheBloke/FusionNet_34Bx2_MoE-AWQ", QUARRY_CHAT_LLAMA2_SYS_BOS,
     "{%- for idx in range(0, messages|length) -%}\n{%- if messages[idx]['role'] == 'user' "
     "-%}\n{%- if idx > 1 -%}\n{{- bos_token + '[INST] ' + messages[idx]['content'] + ' "
     "[/INST]' -}}\n{%- else -%}\n{{- messages[idx]['content'] + ' [/INST]' -}}\n{%- endif "
     "-%}\n{% elif messages[idx]['role'] == 'system' %}\n{{- '[INST] <<SYS>>\\n' + "
     "messages[idx]['content'] + '\\n<</SYS>>\\n\\n' -}}\n{%- elif messages[idx]['role'] == "
     "'assistant' -%}\n{{- ' '  + messages[idx]['content'] + ' ' + eos_token -}}\n{% endif "
     "%}\n{% endfor %}",
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi "
     "there</s><s>[INST] Who are you [/INST]   I am an assistant   </s><s>[INST] Another "
     "question [/INST]"},
    {"bofenghuang/vigogne-2-70b-chat", QUARRY_CHAT_LLAMA2_SYS_STRIP,
     "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = "
     "messages[1:] %}{% set system_message = messages[0]['content'] %}{% elif true == true and "
     "not '<<SYS>>' in messages[0]['content'] %}{% set loop_messages = messages %}{% set "
     "system_message = 'Vous \xc3\xaates Vigogne, un assistant IA cr\xc3\xa9\xc3\xa9 par Zaion "
     "Lab. Vous suivez extr\xc3\xaamement bien les instructions. Aidez autant que vous le "
     "pouvez.' %}{% else %}{% set loop_messages = messages %}{% set system_message = false "
     "%}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != "
     "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
     "user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and "
     "system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
     "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
     "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
     "content.strip() + ' [/INST]' }}{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + "
     "content.strip() + '\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ ' '  "
     "+ content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi "
     "there</s>[INST] Who are you [/INST]I am an assistant</s>[INST] Another question "
     "[/INST]"},
    {"mlabonne/AlphaMonarch-7B", QUARRY_CHAT_MONARCH,
     "{% for message in messages %}{{bos_token + message['role'] + '\\n' + message['content'] "
     "+ eos_token + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ bos_token + "
     "'assistant\\n' }}{% endif %}",
     "system\nYou are a helpful assistant</s>\n<s>user\nHello</s>\n<s>assistant\nHi "
     "there</s>\n<s>user\nWho are you</s>\n<s>assistant\n   I am an assistant   "
     "</s>\n<s>user\nAnother question</s>\n<s>assistant\n"},
    {"google/gemma-7b-it", QUARRY_CHAT_GEMMA,
     "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') "
     "}}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != "
     "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
     "user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') "
     "%}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ "
     "'<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% "
     "endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
     "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>"
     "model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are "
     "you<end_of_turn>\n<start_of_turn>model\nI am an "
     "assistant<end_of_turn>\n<start_of_turn>user\nAnother "
     "question<end_of_turn>\n<start_of_turn>model\n"},
    {"openchat/openchat-3.5-0106", QUARRY_CHAT_OPENCHAT,
     "{{ bos_token }}{% for message in messages %}{{ 'GPT4 Correct ' + "
     "message['role'].title() + ': ' + message['content'] + '<|end_of_turn|>'}}{% endfor %}{% "
     "if add_generation_prompt %}{{ 'GPT4 Correct Assistant:' }}{% endif %}",
     "You are a helpful assistant<|end_of_turn|>GPT4 Correct User: Hello<|end_of_turn|>GPT4 "
     "Correct Assistant: Hi there<|end_of_turn|>GPT4 Correct User: Who are "
     "you<|end_of_turn|>GPT4 Correct Assistant:    I am an assistant   <|end_of_turn|>GPT4 "
     "Correct User: Another question<|end_of_turn|>GPT4 Correct Assistant:"},
    {"deepseek-ai/deepseek-coder-33b-instruct", QUARRY_CHAT_DEEPSEEK,
     "{% if not add_generation_prompt is defined %}\n{% set add_generation_prompt = false "
     "%}\n{% endif %}\n{%- set ns = namespace(found=false) -%}\n{%- for message in messages "
     "-%}\n    {%- if message['role'] == 'system' -%}\n        {%- set ns.found = true -%}\n  "
     "  {%- endif -%}\n{%- endfor -%}\n{{bos_token}}{%- if not ns.found -%}\n{{'You are an AI "
     "programming assistant, utilizing the Deepseek Coder model, developed by Deepseek "
     "Company, and you only answer questions related to computer science. For politically "
     "sensitive questions, security and privacy issues, and other non-computer science "
     "questions, you will refuse to answer\\n'}}\n{%- endif %}\n{%- for message in messages "
     "%}\n    {%- if message['role'] == 'system' %}\n{{ message['content'] }}\n    {%- else "
     "%}\n        {%- if message['role'] == 'user' %}\n{{'### Instruction:\\n' + "
     "message['content'] + '\\n'}}\n        {%- else %}\n{{'### Response:\\n' + "
     "message['content'] + '\\n<|EOT|>\\n'}}\n        {%- endif %}\n    {%- endif %}\n{%- "
     "endfor %}\n{% if add_generation_prompt %}\n{{'### Response:'}}\n{% endif %}",
     "You are a helpful assistant### Instruction:\nHello\n### Response:\nHi "
     "there\n<|EOT|>\n### Instruction:\nWho are you\n### Response:\n   I am an assistant   "
     "\n<|EOT|>\n### Instruction:\nAnother question\n### Response:\n"},
    {"eachadea/vicuna-13b-1.1", QUARRY_CHAT_VICUNA,
     "{%- for message in messages %}{%- if message['role'] == 'system' -%}{{- '' + "
     "message['content'] + '\n\n' -}}{%- else -%}{%- if message['role'] == 'user' "
     "-%}{{-'USER: ' + message['content'] + '\n'-}}{%- else -%}{{-'ASSISTANT: ' + "
     "message['content'] + '</s>\n' -}}{%- endif -%}{%- endif -%}{%- endfor -%}{%- if "
     "add_generation_prompt -%}{{-'ASSISTANT:'-}}{%- endif -%}",
     "You are a helpful assistant\n\nUSER: Hello\nASSISTANT: Hi there</s>\nUSER: Who are "
     "you\nASSISTANT:    I am an assistant   </s>\nUSER: Another question\nASSISTANT:"},
    {"Orca-Vicuna", QUARRY_CHAT_VICUNA_ORCA,
     "{%- for message in messages %}{%- if message['role'] == 'system' -%}{{-'SYSTEM: ' + "
     "message['content'] + '\n' -}}{%- else -%}{%- if message['role'] == 'user' -%}{{-'USER: "
     "' + message['content'] + '\n'-}}{%- else -%}{{-'ASSISTANT: ' + message['content'] + "
     "'</s>\n' -}}{%- endif -%}{%- endif -%}{%- endfor -%}{%- if add_generation_prompt "
     "-%}{{-'ASSISTANT:'-}}{%- endif -%}",
     "SYSTEM: You are a helpful assistant\nUSER: Hello\nASSISTANT: Hi there</s>\nUSER: Who "
     "are you\nASSISTANT:    I am an assistant   </s>\nUSER: Another question\nASSISTANT:"},
    {"CohereForAI/c4ai-command-r-plus", QUARRY_CHAT_COMMAND_R,
     "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = "
     "messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set "
     "loop_messages = messages %}{% set system_message = false %}{% endif %}{% if "
     "system_message != false %}{{ '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + system_message "
     "+ '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% for message in loop_messages %}{% set content "
     "= message['content'] %}{% if message['role'] == 'user' %}{{ "
     "'<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' "
     "}}{% elif message['role'] == 'assistant' %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>'  "
     "+ content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% endfor %}{% if "
     "add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %}",
     "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a helpful "
     "assistant<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello<|END_OF_TURN_"
     "TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hi "
     "there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are "
     "you<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>I am an "
     "assistant<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Another "
     "question<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"},
    {"Llama-3", QUARRY_CHAT_LLAMA3,
     "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
     "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
     "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% "
     "endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' "
     "}}",
     "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful "
     "assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_"
     "header_id|>assistant<|end_header_id|>\n\nHi "
     "there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are "
     "you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an "
     "assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother "
     "question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"Phi-3-small", QUARRY_CHAT_PHI3,
     "{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + "
     "message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ "
     "'<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}",
     "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>"
     "\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   "
     "<|end|>\n<|user|>\nAnother question<|end|>\n<|assistant|>\n"},
    {"GLMEdge", QUARRY_CHAT_GLMEDGE,
     "{% for item in messages %}{% if item['role'] == 'system' %}<|system|>\n{{ "
     "item['content'] }}{% elif item['role'] == 'user' %}<|user|>\n{{ item['content'] }}{% "
     "elif item['role'] == 'assistant' %}<|assistant|>\n{{ item['content'] }}{% endif %}{% "
     "endfor %}<|assistant|>",
     "<|system|>\nYou are a helpful assistant<|user|>\nHello<|assistant|>\nHi "
     "there<|user|>\nWho are you<|assistant|>\n   I am an assistant   <|user|>\nAnother "
     "question<|assistant|>"},
    {"mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template with a system prompt)",
     QUARRY_CHAT_MISTRAL_V1,
     "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = "
     "messages[0]['content'] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    "
     "{%- set loop_messages = messages %}\n{%- endif %}\n\n{{- bos_token }}\n{%- for message in "
     "loop_messages %}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n  "
     "      {{- raise_exception('After the optional system message, conversation roles must "
     "alternate user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if "
     "message['role'] == 'user' %}\n        {%- if loop.first and system_message is defined "
     "%}\n            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' "
     "[/INST]' }}\n        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' "
     "[/INST]' }}\n        {%- endif %}\n    {%- elif message['role'] == 'assistant' %}\n     "
     "   {{- ' ' + message['content'] + eos_token}}\n    {%- else %}\n        {{- "
     "raise_exception('Only user and assistant roles are supported, with the exception of an "
     "initial optional system message!') }}\n    {%- endif %}\n{%- endfor %}\n",
     " [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> [INST] Who are you "
     "[/INST]    I am an assistant   </s> [INST] Another question [/INST]"},
    {"mistralai/Mistral-Large-Instruct-2411 (mistralai 'v7' template)", QUARRY_CHAT_MISTRAL_V7,
     "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] "
     "' + message['content'] + '[/INST]' }}{% elif message['role'] == 'system' %}{{ "
     "'[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}{% elif message['role'] "
     "== 'assistant' %}{{ ' ' + message['content'] + eos_token }}{% else %}{{ "
     "raise_exception('Only user, system and assistant roles are supported!') }}{% endif %}{% "
     "endfor %}",
     "[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT][INST] Hello[/INST] Hi "
     "there</s>[INST] Who are you[/INST]    I am an assistant   </s>[INST] Another "
     "question[/INST]"},
    {"phi-4", QUARRY_CHAT_PHI4,
     "{% for message in messages %}{% if (message['role'] == 'system') "
     "%}{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}{% elif "
     "(message['role'] == 'user') %}{{'<|im_start|>user<|im_sep|>' + message['content'] + "
     "'<|im_end|><|im_start|>assistant<|im_sep|>'}}{% elif (message['role'] == 'assistant') "
     "%}{{message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}",
     "<|im_start|>system<|im_sep|>You are a helpful "
     "assistant<|im_end|><|im_start|>user<|im_sep|>Hello<|im_end|><|im_start|>assistant<|im_"
     "sep|>Hi there<|im_end|><|im_start|>user<|im_sep|>Who are "
     "you<|im_end|><|im_start|>assistant<|im_sep|>   I am an assistant   "
     "<|im_end|><|im_start|>user<|im_sep|>Another "
     "question<|im_end|><|im_start|>assistant<|im_sep|>"},
    /* Not in llama.cpp's tests. llama.cpp's Zephyr rule (<|user|> and
     * <|endoftext|>) comes after the Falcon-3 / GLM-Edge rule (<|user|> and
     * <|assistant|>), so only a template that does not spell out
     * <|assistant|> reaches it; the text is Zephyr's format with
     * StableLM-2-Zephyr's EOS <|endoftext|>. */
    {"Zephyr, role-generic (quarry)", QUARRY_CHAT_ZEPHYR,
     "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\n' + "
     "message['content'] + '<|endoftext|>\n' }}{% else %}{{ '<|' + message['role'] + '|>\n' "
     "+ message['content'] + '<|endoftext|>\n' }}{% endif %}{% endfor %}{% if "
     "add_generation_prompt %}{{ '<|' + 'assistant' + '|>\n' }}{% endif %}",
     "<|system|>\nYou are a helpful assistant<|endoftext|>\n<|user|>\nHello<|endoftext|>\n<|"
     "assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are "
     "you<|endoftext|>\n<|assistant|>\n   I am an assistant   "
     "<|endoftext|>\n<|user|>\nAnother question<|endoftext|>\n<|assistant|>\n"},
    /* Not in llama.cpp: the Alpaca prompt (system text replaces the preamble). */
    {"Alpaca (quarry)", QUARRY_CHAT_ALPACA,
     "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '### "
     "Instruction:\\n' + message['content'] + '\\n\\n' }}{% elif message['role'] == "
     "'assistant' %}{{ '### Response:\\n' + message['content'] + '\\n\\n' }}{% else %}{{ "
     "message['content'] + '\\n\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ "
     "'### Response:\\n' }}{% endif %}",
     "You are a helpful assistant\n\n### Instruction:\nHello\n\n### Response:\nHi there\n\n"
     "### Instruction:\nWho are you\n\n### Response:\n   I am an assistant   \n\n### "
     "Instruction:\nAnother question\n\n### Response:\n"},
};
#define N_CASES (sizeof cases / sizeof cases[0])

static void test_detect_and_render_like_llama_cpp(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        const struct chat_case *c = &cases[i];
        struct quarry_chat_choice ch = quarry_chat_detect(c->tmpl, strlen(c->tmpl));
        if (ch.tmpl != c->family || ch.fallback)
            print_error("%s: detected %s (fallback %d), want %s\n", c->name,
                        quarry_chat_template_name(ch.tmpl), ch.fallback,
                        quarry_chat_template_name(c->family));
        assert_int_equal(ch.tmpl, c->family);
        assert_false(ch.fallback);
        char *out = NULL;
        size_t len = 0;
        assert_int_equal(quarry_chat_render(ch.tmpl, conversation, N_CONV, true, &out, &len, NULL),
                         0);
        if (strcmp(out, c->expected) != 0)
            print_error("%s:\n got: [%s]\nwant: [%s]\n", c->name, out, c->expected);
        assert_string_equal(out, c->expected);
        assert_int_equal(len, strlen(out));
        free(out);
    }
}

/* A shorter conversation (system, user, assistant) renders as the start of
 * the six-message one, for the families whose output is message by message:
 * checks the three-message case against the same llama.cpp strings. */
static void test_three_messages_are_a_prefix(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        const struct chat_case *c = &cases[i];
        char *out = NULL;
        assert_int_equal(quarry_chat_render(c->family, conversation, 3, false, &out, NULL, NULL), 0);
        assert_true(strlen(out) > 0);
        if (strncmp(out, c->expected, strlen(out)) != 0)
            print_error("%s: three-message output is not a prefix:\n[%s]\n", c->name, out);
        assert_int_equal(strncmp(out, c->expected, strlen(out)), 0);
        /* it holds all three contents */
        assert_non_null(strstr(out, "You are a helpful assistant"));
        assert_non_null(strstr(out, "Hello"));
        assert_non_null(strstr(out, "Hi there"));
        free(out);
    }
}

static void test_generation_prompt(void **state)
{
    (void)state;
    const struct quarry_chat_message two[] = {{"system", "Be brief."}, {"user", "Hi"}};
    char *a, *b;
    assert_int_equal(quarry_chat_render(QUARRY_CHAT_CHATML, two, 2, true, &a, NULL, NULL), 0);
    assert_int_equal(quarry_chat_render(QUARRY_CHAT_CHATML, two, 2, false, &b, NULL, NULL), 0);
    assert_string_equal(a, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_"
                           "end|>\n<|im_start|>assistant\n");
    assert_string_equal(b, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_"
                           "end|>\n");
    free(a);
    free(b);
    /* llama-2 has no separate header: [/INST] already asks for the answer */
    assert_int_equal(quarry_chat_render(QUARRY_CHAT_LLAMA2_SYS, two, 2, true, &a, NULL, NULL), 0);
    assert_string_equal(a, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
    free(a);
    /* the plain fallback */
    assert_int_equal(quarry_chat_render(QUARRY_CHAT_PLAIN, two, 2, true, &a, NULL, NULL), 0);
    assert_string_equal(a, "Be brief.\n\nUser: Hi\nAssistant:");
    free(a);
    /* Alpaca without a system message uses the standard preamble */
    assert_int_equal(quarry_chat_render(QUARRY_CHAT_ALPACA, two + 1, 1, true, &a, NULL, NULL), 0);
    assert_string_equal(a, "Below is an instruction that describes a task. Write a response "
                           "that appropriately completes the request.\n\n### "
                           "Instruction:\nHi\n\n### Response:\n");
    free(a);
}

/* Mistral v3 / v3-tekken: llama.cpp's expected strings, rendered by name (the
 * full templates are long; their markers are checked below). */
static void test_mistral_v3_by_name(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(quarry_chat_render(QUARRY_CHAT_MISTRAL_V3, conversation, N_CONV, true, &out,
                                        NULL, NULL),
                     0);
    assert_string_equal(out, "[INST] You are a helpful assistant\n\nHello[/INST] Hi "
                             "there</s>[INST] Who are you[/INST] I am an assistant</s>[INST] "
                             "Another question[/INST]");
    free(out);
    assert_int_equal(quarry_chat_render(QUARRY_CHAT_MISTRAL_V3_TEKKEN, conversation, N_CONV, true,
                                        &out, NULL, NULL),
                     0);
    assert_string_equal(out, "[INST]You are a helpful assistant\n\nHello[/INST]Hi "
                             "there</s>[INST]Who are you[/INST]   I am an assistant   "
                             "</s>[INST]Another question[/INST]");
    free(out);

    /* the markers llama.cpp keys on (fragments of the real templates) */
    const char *v3 = "{%- if tools is not none and (message == user_messages[-1]) %}{{- "
                     "\"[AVAILABLE_TOOLS] [\" }}{%- endif %}{{- \"[INST] \" + "
                     "message[\"content\"] + \"[/INST]\" }}";
    const char *tekken = "{{- \"[AVAILABLE_TOOLS][\" }}{{- \"[INST]\" + message[\"content\"] + "
                         "\"[/INST]\" }}{% if x %}{{ \"[INST]\" }}{% endif %}";
    assert_int_equal(quarry_chat_detect(v3, strlen(v3)).tmpl, QUARRY_CHAT_MISTRAL_V3);
    assert_int_equal(quarry_chat_detect(tekken, strlen(tekken)).tmpl,
                     QUARRY_CHAT_MISTRAL_V3_TEKKEN);
}

static void test_detection_edge_cases(void **state)
{
    (void)state;
    struct quarry_chat_choice c;
    /* no template, or one that matches nothing: plain, flagged */
    c = quarry_chat_detect(NULL, 0);
    assert_int_equal(c.tmpl, QUARRY_CHAT_PLAIN);
    assert_true(c.fallback);
    const char *odd = "{% for m in messages %}{{ m['content'] }}{% endfor %}";
    c = quarry_chat_detect(odd, strlen(odd));
    assert_int_equal(c.tmpl, QUARRY_CHAT_PLAIN);
    assert_true(c.fallback);
    assert_null(c.unsupported);
    /* a family llama.cpp knows but quarry does not render */
    const char *glm3 = "{% for message in messages %}[gMASK]sop<|{{ message['role'] }}|>{% "
                       "endfor %}";
    c = quarry_chat_detect(glm3, strlen(glm3));
    assert_true(c.fallback);
    assert_string_equal(c.unsupported, "chatglm3");
    /* names select families; "mistral..." goes to the [INST] rules */
    c = quarry_chat_detect("llama3", 6);
    assert_int_equal(c.tmpl, QUARRY_CHAT_LLAMA3);
    assert_false(c.fallback);
    c = quarry_chat_detect("mistral", 7);
    assert_int_equal(c.tmpl, QUARRY_CHAT_LLAMA2);
    /* the length is honoured (text need not be NUL-terminated) */
    c = quarry_chat_detect("chatmlXYZ", 6);
    assert_int_equal(c.tmpl, QUARRY_CHAT_CHATML);
    /* ChatML markers win over everything after them in the rule order */
    const char *both = "<|im_start|> [INST] <|start_header_id|><|end_header_id|>";
    assert_int_equal(quarry_chat_detect(both, strlen(both)).tmpl, QUARRY_CHAT_CHATML);
    /* TinyLlama-1.1B-Chat's (Zephyr-7B's) template: llama.cpp puts it in GLM-Edge */
    const char *tinyllama =
        "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
        "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ "
        "'<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == "
        "'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif "
        "%}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif "
        "%}\n{% endfor %}";
    assert_int_equal(quarry_chat_detect(tinyllama, strlen(tinyllama)).tmpl, QUARRY_CHAT_GLMEDGE);
    /* with a literal </s> it is Falcon-3 */
    const char *falcon = "{{ '<|user|>\n' + m + '</s>' }}{{ '<|assistant|>\n' }}";
    assert_int_equal(quarry_chat_detect(falcon, strlen(falcon)).tmpl, QUARRY_CHAT_FALCON3);
}

static void test_select(void **state)
{
    (void)state;
    struct quarry_chat_choice c;
    quarry_error err = {0};
    const char *model = "<|im_start|>{{ x }}";
    /* no override: the model's template */
    assert_int_equal(quarry_chat_select(model, strlen(model), NULL, &c, &err), 0);
    assert_int_equal(c.tmpl, QUARRY_CHAT_CHATML);
    /* an override by name wins */
    assert_int_equal(quarry_chat_select(model, strlen(model), "zephyr", &c, &err), 0);
    assert_int_equal(c.tmpl, QUARRY_CHAT_ZEPHYR);
    assert_false(c.fallback);
    assert_int_equal(quarry_chat_select(model, strlen(model), "plain", &c, &err), 0);
    assert_int_equal(c.tmpl, QUARRY_CHAT_PLAIN);
    assert_false(c.fallback);
    /* an unknown override is the user's error, not a silent fallback */
    assert_int_equal(quarry_chat_select(model, strlen(model), "no-such-family", &c, &err),
                     QUARRY_EINVAL);
    assert_non_null(strstr(err.msg, "no-such-family"));
    assert_int_equal(quarry_chat_select(model, strlen(model), "granite", &c, &err),
                     QUARRY_EUNSUPPORTED);
    /* names round-trip */
    for (int t = 0; t < QUARRY_CHAT_COUNT; t++)
        assert_int_equal(quarry_chat_template_from_name(quarry_chat_template_name(t)), t);
    assert_int_equal(quarry_chat_template_from_name("nope"), -1);
}

static void test_bad_messages(void **state)
{
    (void)state;
    const struct quarry_chat_message bad[] = {{"user", NULL}};
    char *out = (char *)1;
    quarry_error err = {0};
    assert_int_equal(quarry_chat_render(QUARRY_CHAT_CHATML, bad, 1, true, &out, NULL, &err),
                     QUARRY_EINVAL);
    assert_null(out);
    /* an empty conversation is fine */
    assert_int_equal(quarry_chat_render(QUARRY_CHAT_LLAMA3, NULL, 0, true, &out, NULL, &err), 0);
    assert_string_equal(out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_and_render_like_llama_cpp),
        cmocka_unit_test(test_three_messages_are_a_prefix),
        cmocka_unit_test(test_generation_prompt),
        cmocka_unit_test(test_mistral_v3_by_name),
        cmocka_unit_test(test_detection_edge_cases),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_bad_messages),
    };
    return TU_RUN_GROUP(tests);
}
