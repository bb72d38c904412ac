/*
 * ui.h - the chat page served at GET /: one HTML file with its CSS and
 * JavaScript, embedded in the binary. The page talks to the server's own
 * /v1/chat/completions with stream: true and shows the reply as it streams;
 * an API key typed into it is kept in the browser's localStorage and sent as
 * a Bearer token.
 */
#ifndef QUARRY_SERVER_UI_H
#define QUARRY_SERVER_UI_H

#include <stddef.h>

/* The page (static, NUL-terminated) and its length. */
const char *srv_ui_page(size_t *len);

#endif
