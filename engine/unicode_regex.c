/*
 * unicode_regex.c - the pre-tokenizer regex engine (see unicode_regex.h).
 *
 * A pattern is parsed into a small tree, then compiled to a program for a
 * backtracking VM in the style of Thompson/Pike: CHAR and CLASS consume one
 * codepoint, SPLIT x,y tries x first and remembers y on the backtrack stack,
 * JMP jumps, LOOK runs a nested program at the current position (lookahead),
 * MATCH ends. Trying alternatives in program order gives Perl/ECMAScript
 * semantics: the first alternative that leads to a match wins, quantifiers are
 * greedy (or lazy) with backtracking - the semantics of the HF tokenizers and
 * of llama.cpp's std::regex / hand-written splitters.
 */
#include "engine/unicode_regex.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/unicode.h"

#define RE_MAX_PROGRAM 65536 /* instructions */
#define RE_MAX_REPEAT 1000
#define RE_MAX_DEPTH 64      /* group nesting */
#define RE_MAX_NEG_ITEMS 8

enum re_op { OP_CHAR, OP_CLASS, OP_ANY, OP_SPLIT, OP_JMP, OP_BOL, OP_EOL, OP_LOOK, OP_LOOK_END, OP_MATCH };

struct re_inst {
    uint8_t op;
    uint8_t neg;  /* OP_LOOK: negative lookahead */
    uint32_t arg; /* OP_CHAR: codepoint; OP_CLASS: class index */
    int32_t x, y; /* OP_SPLIT: preferred, alternative; OP_JMP: x; OP_LOOK: x = after the sub-program */
};

/* A bracket class (or a single escape like \s): codepoint matches when
 * (in a range || flags & pos_mask || some neg item has (flags & item) == 0) != negate. */
struct re_class {
    bool negate;
    uint8_t pos_mask;
    uint8_t n_neg;
    uint8_t neg_items[RE_MAX_NEG_ITEMS];
    size_t first_range, n_ranges; /* into quarry_regex.ranges */
};

struct quarry_regex {
    struct re_inst *prog;
    size_t n_prog;
    struct re_class *classes;
    size_t n_classes;
    uint32_t (*ranges)[2];
    size_t n_ranges;
};

/* ---- parse tree ------------------------------------------------------------ */

enum node_kind { N_EMPTY, N_CHAR, N_CLASS, N_ANY, N_BOL, N_EOL, N_CAT, N_ALT, N_REPEAT, N_LOOK };

struct node {
    uint8_t kind;
    bool flag;       /* N_REPEAT: greedy; N_LOOK: negative */
    uint32_t c;      /* N_CHAR: codepoint; N_CLASS: class index */
    int min, max;    /* N_REPEAT; max < 0 = unbounded */
    int child;       /* N_CAT/N_ALT: first child; N_REPEAT/N_LOOK: the operand */
    int next;        /* next sibling in a CAT/ALT list */
};

struct parser {
    const char *p, *end;
    struct node *nodes;
    size_t n_nodes, cap_nodes;
    struct quarry_regex *re;
    size_t cap_classes, cap_ranges;
    int depth;
    quarry_error *err;
    const char *pattern;
    int rc;
};

static int perr(struct parser *ps, const char *what)
{
    if (ps->rc == 0)
        ps->rc = quarry_errorf(ps->err, QUARRY_EINVAL, "regex '%s': %s at offset %ld", ps->pattern,
                               what, (long)(ps->p - ps->pattern));
    return -1;
}

static int new_node(struct parser *ps, uint8_t kind)
{
    if (ps->n_nodes == ps->cap_nodes) {
        size_t cap = ps->cap_nodes ? ps->cap_nodes * 2 : 64;
        struct node *n = realloc(ps->nodes, cap * sizeof *n);
        if (!n) {
            ps->rc = quarry_errorf(ps->err, QUARRY_ENOMEM, "regex: out of memory");
            return -1;
        }
        ps->nodes = n;
        ps->cap_nodes = cap;
    }
    struct node *n = &ps->nodes[ps->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->child = n->next = -1;
    return (int)ps->n_nodes++;
}

static int new_class(struct parser *ps)
{
    struct quarry_regex *re = ps->re;
    if (re->n_classes == ps->cap_classes) {
        size_t cap = ps->cap_classes ? ps->cap_classes * 2 : 16;
        struct re_class *c = realloc(re->classes, cap * sizeof *c);
        if (!c) {
            ps->rc = quarry_errorf(ps->err, QUARRY_ENOMEM, "regex: out of memory");
            return -1;
        }
        re->classes = c;
        ps->cap_classes = cap;
    }
    struct re_class *c = &re->classes[re->n_classes];
    memset(c, 0, sizeof *c);
    c->first_range = re->n_ranges;
    return (int)re->n_classes++;
}

static int add_range(struct parser *ps, struct re_class *c, uint32_t lo, uint32_t hi)
{
    struct quarry_regex *re = ps->re;
    if (lo > hi)
        return perr(ps, "range out of order");
    if (re->n_ranges == ps->cap_ranges) {
        size_t cap = ps->cap_ranges ? ps->cap_ranges * 2 : 64;
        uint32_t(*r)[2] = realloc(re->ranges, cap * sizeof *r);
        if (!r) {
            ps->rc = quarry_errorf(ps->err, QUARRY_ENOMEM, "regex: out of memory");
            return -1;
        }
        re->ranges = r;
        ps->cap_ranges = cap;
    }
    re->ranges[re->n_ranges][0] = lo;
    re->ranges[re->n_ranges][1] = hi;
    re->n_ranges++;
    c->n_ranges++;
    return 0;
}

static uint32_t next_cp(struct parser *ps)
{
    size_t adv;
    uint32_t cp = quarry_utf8_decode(ps->p, (size_t)(ps->end - ps->p), &adv);
    ps->p += adv;
    return cp;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static uint8_t category_bit(char name)
{
    switch (name) {
    case 'L': return QUARRY_UCP_LETTER;
    case 'N': return QUARRY_UCP_NUMBER;
    case 'P': return QUARRY_UCP_PUNCTUATION;
    case 'S': return QUARRY_UCP_SYMBOL;
    case 'M': return QUARRY_UCP_MARK;
    case 'Z': return QUARRY_UCP_SEPARATOR;
    case 'C': return QUARRY_UCP_CONTROL;
    default: return 0;
    }
}

/* An escape after the backslash. Either a single codepoint (*cp, returns 1) or
 * a set item added to class c (returns 2); -1 on error. */
static int parse_escape(struct parser *ps, struct re_class *c, uint32_t *cp)
{
    if (ps->p >= ps->end)
        return perr(ps, "trailing backslash");
    char e = *ps->p++;
    uint8_t bit = 0;
    bool negated = false;
    switch (e) {
    case 'r': *cp = '\r'; return 1;
    case 'n': *cp = '\n'; return 1;
    case 't': *cp = '\t'; return 1;
    case 'f': *cp = '\f'; return 1;
    case 'v': *cp = '\v'; return 1;
    case '0': *cp = 0; return 1;
    case 'x':
    case 'u': {
        int digits = e == 'x' ? 2 : 4;
        uint32_t v = 0;
        for (int i = 0; i < digits; i++) {
            int h = ps->p < ps->end ? hex_value(*ps->p) : -1;
            if (h < 0)
                return perr(ps, "bad hex escape");
            v = v * 16 + (uint32_t)h;
            ps->p++;
        }
        *cp = v;
        return 1;
    }
    case 's': bit = QUARRY_UCP_WHITESPACE; break;
    case 'S': bit = QUARRY_UCP_WHITESPACE; negated = true; break;
    case 'd':
    case 'D':
        if (!c)
            return 2;
        if (e == 'D')
            return perr(ps, "\\D is not supported");
        return add_range(ps, c, '0', '9') < 0 ? -1 : 2;
    case 'w':
        if (!c)
            return 2;
        if (add_range(ps, c, '0', '9') < 0 || add_range(ps, c, 'A', 'Z') < 0 ||
            add_range(ps, c, 'a', 'z') < 0 || add_range(ps, c, '_', '_') < 0)
            return -1;
        return 2;
    case 'p':
    case 'P':
        if (ps->end - ps->p < 3 || ps->p[0] != '{' || ps->p[2] != '}' || !category_bit(ps->p[1]))
            return perr(ps, "unsupported \\p{...} (only L N P S M Z C)");
        bit = category_bit(ps->p[1]);
        negated = e == 'P';
        ps->p += 3;
        break;
    default:
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '1' && e <= '9'))
            return perr(ps, "unsupported escape");
        ps->p--;
        *cp = next_cp(ps); /* escaped punctuation or any other literal */
        return 1;
    }
    if (!c)
        return 2;
    if (negated) {
        if (c->n_neg == RE_MAX_NEG_ITEMS)
            return perr(ps, "too many negated items in a class");
        c->neg_items[c->n_neg++] = bit;
    } else {
        c->pos_mask |= bit;
    }
    return 2;
}

/* [ ... ] after the '[' */
static int parse_bracket(struct parser *ps)
{
    int ci = new_class(ps);
    if (ci < 0)
        return -1;
    struct re_class *c = &ps->re->classes[ci];
    if (ps->p < ps->end && *ps->p == '^') {
        c->negate = true;
        ps->p++;
    }
    bool first = true;
    for (;;) {
        if (ps->p >= ps->end)
            return perr(ps, "unterminated [");
        if (*ps->p == ']' && !first) {
            ps->p++;
            break;
        }
        first = false;
        uint32_t lo;
        if (*ps->p == '\\') {
            ps->p++;
            int k = parse_escape(ps, c, &lo);
            c = &ps->re->classes[ci]; /* (classes may have moved) */
            if (k < 0)
                return -1;
            if (k == 2)
                continue;
        } else {
            lo = next_cp(ps);
        }
        uint32_t hi = lo;
        if (ps->end - ps->p >= 2 && ps->p[0] == '-' && ps->p[1] != ']') {
            ps->p++;
            if (*ps->p == '\\') {
                ps->p++;
                int k = parse_escape(ps, NULL, &hi);
                if (k != 1)
                    return k < 0 ? -1 : perr(ps, "class item as a range end");
            } else {
                hi = next_cp(ps);
            }
        }
        if (add_range(ps, c, lo, hi) < 0)
            return -1;
    }
    int n = new_node(ps, N_CLASS);
    if (n >= 0)
        ps->nodes[n].c = (uint32_t)ci;
    return n;
}

static int parse_alt(struct parser *ps);

static int parse_atom(struct parser *ps)
{
    char ch = *ps->p;
    if (ch == '(') {
        ps->p++;
        int look = -1; /* 0: (?=  1: (?!  -1: plain group */
        if (ps->end - ps->p >= 2 && ps->p[0] == '?') {
            if (ps->p[1] == ':') {
                ps->p += 2;
            } else if (ps->p[1] == '=' || ps->p[1] == '!') {
                look = ps->p[1] == '!';
                ps->p += 2;
            } else {
                return perr(ps, "unsupported group (only (?: (?= (?!)");
            }
        }
        if (++ps->depth > RE_MAX_DEPTH)
            return perr(ps, "groups nested too deep");
        int inner = parse_alt(ps);
        ps->depth--;
        if (inner < 0)
            return -1;
        if (ps->p >= ps->end || *ps->p != ')')
            return perr(ps, "missing )");
        ps->p++;
        if (look < 0)
            return inner;
        int n = new_node(ps, N_LOOK);
        if (n >= 0) {
            ps->nodes[n].child = inner;
            ps->nodes[n].flag = look == 1;
        }
        return n;
    }
    if (ch == '[') {
        ps->p++;
        return parse_bracket(ps);
    }
    if (ch == '.') {
        ps->p++;
        return new_node(ps, N_ANY);
    }
    if (ch == '^' || ch == '$') {
        ps->p++;
        return new_node(ps, ch == '^' ? N_BOL : N_EOL);
    }
    if (ch == '*' || ch == '+' || ch == '?' || ch == '{')
        return perr(ps, "quantifier without operand");
    uint32_t cp;
    if (ch == '\\') {
        ps->p++;
        int ci = new_class(ps);
        if (ci < 0)
            return -1;
        int k = parse_escape(ps, &ps->re->classes[ci], &cp);
        if (k < 0)
            return -1;
        if (k == 2) {
            int n = new_node(ps, N_CLASS);
            if (n >= 0)
                ps->nodes[n].c = (uint32_t)ci;
            return n;
        }
        ps->re->n_classes--; /* a plain character after all */
    } else {
        cp = next_cp(ps);
    }
    int n = new_node(ps, N_CHAR);
    if (n >= 0)
        ps->nodes[n].c = cp;
    return n;
}

static int parse_number(struct parser *ps, int *out)
{
    int v = 0, digits = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        v = v * 10 + (*ps->p++ - '0');
        if (v > RE_MAX_REPEAT)
            return perr(ps, "repeat count too large");
        digits++;
    }
    *out = v;
    return digits;
}

static int parse_repeat(struct parser *ps)
{
    int atom = parse_atom(ps);
    if (atom < 0)
        return -1;
    while (ps->p < ps->end) {
        int min, max;
        char ch = *ps->p;
        if (ch == '*') {
            min = 0, max = -1;
            ps->p++;
        } else if (ch == '+') {
            min = 1, max = -1;
            ps->p++;
        } else if (ch == '?') {
            min = 0, max = 1;
            ps->p++;
        } else if (ch == '{') {
            ps->p++;
            int d = parse_number(ps, &min);
            if (d <= 0)
                return d < 0 ? -1 : perr(ps, "bad {n,m}");
            max = min;
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                d = parse_number(ps, &max);
                if (d < 0)
                    return -1;
                if (d == 0)
                    max = -1;
            }
            if (ps->p >= ps->end || *ps->p != '}' || (max >= 0 && max < min))
                return perr(ps, "bad {n,m}");
            ps->p++;
        } else {
            break;
        }
        bool greedy = true;
        if (ps->p < ps->end && *ps->p == '?') {
            greedy = false;
            ps->p++;
        }
        int n = new_node(ps, N_REPEAT);
        if (n < 0)
            return -1;
        ps->nodes[n].child = atom;
        ps->nodes[n].min = min;
        ps->nodes[n].max = max;
        ps->nodes[n].flag = greedy;
        atom = n;
    }
    return atom;
}

static int parse_cat(struct parser *ps)
{
    int cat = new_node(ps, N_CAT);
    if (cat < 0)
        return -1;
    int last = -1;
    while (ps->p < ps->end && *ps->p != '|' && *ps->p != ')') {
        int item = parse_repeat(ps);
        if (item < 0)
            return -1;
        if (last < 0)
            ps->nodes[cat].child = item;
        else
            ps->nodes[last].next = item;
        last = item;
    }
    return cat;
}

static int parse_alt(struct parser *ps)
{
    int first = parse_cat(ps);
    if (first < 0)
        return -1;
    if (ps->p >= ps->end || *ps->p != '|')
        return first;
    int alt = new_node(ps, N_ALT);
    if (alt < 0)
        return -1;
    ps->nodes[alt].child = first;
    int last = first;
    while (ps->p < ps->end && *ps->p == '|') {
        ps->p++;
        int next = parse_cat(ps);
        if (next < 0)
            return -1;
        ps->nodes[last].next = next;
        last = next;
    }
    return alt;
}

/* ---- compilation ----------------------------------------------------------- */

static bool nullable(const struct node *nodes, int i)
{
    const struct node *n = &nodes[i];
    switch (n->kind) {
    case N_CHAR:
    case N_CLASS:
    case N_ANY:
        return false;
    case N_CAT:
        for (int c = n->child; c >= 0; c = nodes[c].next)
            if (!nullable(nodes, c))
                return false;
        return true;
    case N_ALT:
        for (int c = n->child; c >= 0; c = nodes[c].next)
            if (nullable(nodes, c))
                return true;
        return false;
    case N_REPEAT:
        return n->min == 0 || nullable(nodes, n->child);
    default: /* empty, anchors, lookaheads */
        return true;
    }
}

struct emitter {
    struct quarry_regex *re;
    size_t cap;
    const struct node *nodes;
    struct parser *ps;
};

static int emit(struct emitter *em, uint8_t op, uint32_t arg, int32_t x, int32_t y)
{
    struct quarry_regex *re = em->re;
    if (re->n_prog >= RE_MAX_PROGRAM)
        return perr(em->ps, "pattern too large");
    if (re->n_prog == em->cap) {
        size_t cap = em->cap ? em->cap * 2 : 64;
        struct re_inst *p = realloc(re->prog, cap * sizeof *p);
        if (!p) {
            em->ps->rc = quarry_errorf(em->ps->err, QUARRY_ENOMEM, "regex: out of memory");
            return -1;
        }
        re->prog = p;
        em->cap = cap;
    }
    struct re_inst *in = &re->prog[re->n_prog];
    in->op = op;
    in->neg = 0;
    in->arg = arg;
    in->x = x;
    in->y = y;
    return (int)re->n_prog++;
}

static int compile_node(struct emitter *em, int i);

/* One optional copy: SPLIT body, end (greedy) or end, body (lazy). Returns the
 * SPLIT's index; its "end" side is patched by the caller. */
static int compile_repeat(struct emitter *em, const struct node *n)
{
    for (int k = 0; k < n->min; k++)
        if (compile_node(em, n->child) < 0)
            return -1;
    if (n->max < 0) {
        /* L: SPLIT body, end; body; JMP L; end: */
        int split = emit(em, OP_SPLIT, 0, 0, 0);
        if (split < 0 || compile_node(em, n->child) < 0 || emit(em, OP_JMP, 0, split, 0) < 0)
            return -1;
        int end = (int)em->re->n_prog;
        em->re->prog[split].x = n->flag ? split + 1 : end;
        em->re->prog[split].y = n->flag ? end : split + 1;
        return 0;
    }
    int n_opt = n->max - n->min;
    int splits[RE_MAX_REPEAT];
    for (int k = 0; k < n_opt; k++) {
        splits[k] = emit(em, OP_SPLIT, 0, 0, 0);
        if (splits[k] < 0 || compile_node(em, n->child) < 0)
            return -1;
    }
    int end = (int)em->re->n_prog;
    for (int k = 0; k < n_opt; k++) {
        em->re->prog[splits[k]].x = n->flag ? splits[k] + 1 : end;
        em->re->prog[splits[k]].y = n->flag ? end : splits[k] + 1;
    }
    return 0;
}

static int compile_node(struct emitter *em, int i)
{
    const struct node *n = &em->nodes[i];
    switch (n->kind) {
    case N_EMPTY:
        return 0;
    case N_CHAR:
        return emit(em, OP_CHAR, n->c, 0, 0) < 0 ? -1 : 0;
    case N_CLASS:
        return emit(em, OP_CLASS, n->c, 0, 0) < 0 ? -1 : 0;
    case N_ANY:
        return emit(em, OP_ANY, 0, 0, 0) < 0 ? -1 : 0;
    case N_BOL:
        return emit(em, OP_BOL, 0, 0, 0) < 0 ? -1 : 0;
    case N_EOL:
        return emit(em, OP_EOL, 0, 0, 0) < 0 ? -1 : 0;
    case N_CAT:
        for (int c = n->child; c >= 0; c = em->nodes[c].next)
            if (compile_node(em, c) < 0)
                return -1;
        return 0;
    case N_ALT: {
        /* SPLIT a, next; a; JMP end; next: SPLIT b, next2; b; JMP end; ... last */
        int jumps[256], n_jumps = 0;
        for (int c = n->child; c >= 0; c = em->nodes[c].next) {
            bool last = em->nodes[c].next < 0;
            int split = -1;
            if (!last && (split = emit(em, OP_SPLIT, 0, 0, 0)) < 0)
                return -1;
            if (compile_node(em, c) < 0)
                return -1;
            if (!last) {
                if (n_jumps == 256)
                    return perr(em->ps, "too many alternatives");
                if ((jumps[n_jumps++] = emit(em, OP_JMP, 0, 0, 0)) < 0)
                    return -1;
                em->re->prog[split].x = split + 1;
                em->re->prog[split].y = (int32_t)em->re->n_prog;
            }
        }
        for (int k = 0; k < n_jumps; k++)
            em->re->prog[jumps[k]].x = (int32_t)em->re->n_prog;
        return 0;
    }
    case N_REPEAT:
        if (n->max < 0 && nullable(em->nodes, n->child))
            return perr(em->ps, "unbounded repeat of something that can match empty");
        return compile_repeat(em, n);
    case N_LOOK: {
        int look = emit(em, OP_LOOK, 0, 0, 0);
        if (look < 0 || compile_node(em, n->child) < 0 || emit(em, OP_LOOK_END, 0, 0, 0) < 0)
            return -1;
        em->re->prog[look].neg = n->flag;
        em->re->prog[look].x = (int32_t)em->re->n_prog;
        return 0;
    }
    }
    return perr(em->ps, "internal: bad node");
}

void quarry_regex_free(quarry_regex *re)
{
    if (!re)
        return;
    free(re->prog);
    free(re->classes);
    free(re->ranges);
    free(re);
}

int quarry_regex_compile(const char *pattern, quarry_regex **out, quarry_error *err)
{
    *out = NULL;
    struct quarry_regex *re = calloc(1, sizeof *re);
    if (!re)
        return quarry_errorf(err, QUARRY_ENOMEM, "regex: out of memory");
    struct parser ps = {.p = pattern, .end = pattern + strlen(pattern), .re = re, .err = err,
                        .pattern = pattern};
    int root = parse_alt(&ps);
    if (root >= 0 && ps.p != ps.end)
        perr(&ps, "unbalanced )");
    if (ps.rc == 0) {
        struct emitter em = {.re = re, .nodes = ps.nodes, .ps = &ps};
        if (compile_node(&em, root) == 0)
            emit(&em, OP_MATCH, 0, 0, 0);
    }
    free(ps.nodes);
    if (ps.rc) {
        quarry_regex_free(re);
        return ps.rc;
    }
    *out = re;
    return 0;
}

/* ---- matching -------------------------------------------------------------- */

void quarry_regex_scratch_free(struct quarry_regex_scratch *s)
{
    free(s->stack);
    s->stack = NULL;
    s->top = s->cap = 0;
}

static bool push(struct quarry_regex_scratch *s, size_t pc, size_t pos)
{
    if (s->top + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        size_t *st = realloc(s->stack, cap * sizeof *st);
        if (!st)
            return false;
        s->stack = st;
        s->cap = cap;
    }
    s->stack[s->top++] = pc;
    s->stack[s->top++] = pos;
    return true;
}

static bool class_match(const struct quarry_regex *re, const struct re_class *c, uint32_t cp,
                        uint8_t flags)
{
    bool in = (flags & c->pos_mask) != 0;
    for (size_t k = 0; !in && k < c->n_neg; k++)
        in = (flags & c->neg_items[k]) == 0;
    for (size_t k = 0; !in && k < c->n_ranges; k++) {
        const uint32_t *r = re->ranges[c->first_range + k];
        in = cp >= r[0] && cp <= r[1];
    }
    return in != c->negate;
}

/* Runs the program from pc0 at pos0; returns the match end, -1, or -2 (no memory). */
static long vm_run(const quarry_regex *re, size_t pc0, const uint32_t *cps, const uint8_t *flags,
                   size_t n, size_t pos0, struct quarry_regex_scratch *st)
{
    const size_t base = st->top;
    if (!push(st, pc0, pos0))
        return -2;
    while (st->top > base) {
        size_t pos = st->stack[--st->top];
        size_t pc = st->stack[--st->top];
        for (;;) {
            const struct re_inst *in = &re->prog[pc];
            switch (in->op) {
            case OP_CHAR:
                if (pos < n && cps[pos] == in->arg) {
                    pc++, pos++;
                    continue;
                }
                break;
            case OP_CLASS:
                if (pos < n && class_match(re, &re->classes[in->arg], cps[pos], flags[pos])) {
                    pc++, pos++;
                    continue;
                }
                break;
            case OP_ANY:
                if (pos < n && cps[pos] != '\n' && cps[pos] != '\r' && cps[pos] != 0x2028 &&
                    cps[pos] != 0x2029) {
                    pc++, pos++;
                    continue;
                }
                break;
            case OP_SPLIT:
                if (!push(st, (size_t)in->y, pos))
                    return -2;
                pc = (size_t)in->x;
                continue;
            case OP_JMP:
                pc = (size_t)in->x;
                continue;
            case OP_BOL:
                if (pos == 0) {
                    pc++;
                    continue;
                }
                break;
            case OP_EOL:
                if (pos == n) {
                    pc++;
                    continue;
                }
                break;
            case OP_LOOK: {
                long r = vm_run(re, pc + 1, cps, flags, n, pos, st);
                if (r == -2)
                    return -2;
                if ((r >= 0) != (in->neg != 0)) {
                    pc = (size_t)in->x;
                    continue;
                }
                break;
            }
            case OP_LOOK_END:
            case OP_MATCH:
                st->top = base;
                return (long)pos;
            }
            break; /* this thread failed: backtrack */
        }
    }
    return -1;
}

long quarry_regex_match_at(const quarry_regex *re, const uint32_t *cps, const uint8_t *flags,
                           size_t n, size_t pos, struct quarry_regex_scratch *scratch)
{
    scratch->top = 0;
    return vm_run(re, 0, cps, flags, n, pos, scratch);
}

struct size_list {
    size_t *v;
    size_t n, cap;
};

static bool list_add(struct size_list *l, size_t x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return true;
}

int quarry_regex_split(const quarry_regex *re, const uint32_t *cps, const uint8_t *flags,
                       const size_t *in, size_t n_in, size_t **out, size_t *n_out,
                       struct quarry_regex_scratch *scratch, quarry_error *err)
{
    struct size_list res = {0};
    size_t start = 0;
    *out = NULL;
    *n_out = 0;
    for (size_t k = 0; k < n_in; k++) {
        const uint32_t *c = cps + start;
        const uint8_t *f = flags + start;
        const size_t len = in[k];
        size_t prev = 0, p = 0;
        while (p < len) {
            long e = quarry_regex_match_at(re, c, f, len, p, scratch);
            if (e == -2)
                goto oom;
            if (e > (long)p) {
                if (p > prev && !list_add(&res, p - prev))
                    goto oom;
                if (!list_add(&res, (size_t)e - p))
                    goto oom;
                prev = p = (size_t)e;
            } else {
                p++;
            }
        }
        if (len > prev && !list_add(&res, len - prev))
            goto oom;
        start += len;
    }
    *out = res.v;
    *n_out = res.n;
    return 0;
oom:
    free(res.v);
    return quarry_errorf(err, QUARRY_ENOMEM, "regex split: out of memory");
}
