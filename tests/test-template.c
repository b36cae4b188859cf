/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The channel template language, as a channel owner and a webhook caller see it: what a template
 * renders to, whether a condition passes, and the exact error a channel editor shows.
 * Table-driven: every row is its own test path, so TAP names each case.
 */
#define G_LOG_DOMAIN "test-template"

#include "config.h"

#include <string.h>

#include "tocsin-template.h"

/* The webhook variables most cases render against. Written with ' for " to stay readable; a
 * literal apostrophe would be \u0027. */
static const char *default_vars =
  "{"
  " 'server_name': 'Production', 'cpu_usage': 95, 'load': 95.5, 'status': 'firing',"
  " 'host': '', 'zero': 0, 'zero_str': '0', 'empty': '', 'nothing': null, 'yes': true,"
  " 'no': false, 'num_str': '95', 'big': 9007199254740993, 'neg': -3,"
  " 'user': {'name': 'Ada', 'roles': ['admin', 'dev'], 'address': {'city': 'Paris'}},"
  " 'data': {'value': 42, 'key-with-dash': 'dash', '0': 'zero-key'},"
  " 'alerts': [{'labels': {'alertname': 'HighCPU', 'severity': 'critical'}, 'status': 'firing'}],"
  " 'tags': ['urgent', 'db', 3], 'accent': 'été', 'emoji': 'deploy 🚀 done',"
  " 'spaces': '  padded\\t\\n', 'nbsp': '\\u00a0x\\u3000', 'template_bomb': '{{server_name}}',"
  " 'nested_bomb': '{{x}}{{x}}', 'ss': 'straße', 'empty_obj': {}, 'empty_arr': [],"
  " 'quote': 'say \\'hi\\'', 'html': '<b>x</b>', 'version': '100', 'v2': '20', 'n100': 100,"
  " 'n20': 20, 'nan_str': 'abc', 'ws_num': ' 42 ', 'hex': '0x1F', 'exp': '1e3',"
  " 'température': 21, '$dollar': 'd', 'multi': 'a\\nb', 'control': 'a\\u0001b'"
  "}";

typedef struct
{
  const char *path;
  const char *source;
  const char *expected;
  const char *vars; /* NULL: default_vars */
} RenderCase;

typedef struct
{
  const char *path;
  const char *source;
  gboolean expected;
  const char *vars;
} ConditionCase;

typedef struct
{
  const char *path;
  const char *field;
  gboolean condition;
  const char *source;
  TocsinTemplateError code;
  const char *message;
} ErrorCase;

static JsonObject *
parse_vars (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *json = g_strdup (text);

  /* ' stands for " in the tables (so \' is a JSON \") */
  for (char *p = json; *p; p++)
    if (*p == '\'')
      *p = '"';
  json_parser_load_from_data (parser, json, -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

/* Monday 23 November 2026, 16:40:00.123 UTC */
static GDateTime *
fixed_clock (void)
{
  g_autoptr(GDateTime) whole = g_date_time_new_from_unix_utc (1795452000);

  return g_date_time_add (whole, 123 * G_TIME_SPAN_MILLISECOND);
}

static TocsinTemplateScope *
make_scope (const char *vars)
{
  g_autoptr(JsonObject) object = parse_vars (vars ? vars : default_vars);
  g_autoptr(GDateTime) now = fixed_clock ();
  TocsinTemplateScope *scope = tocsin_template_scope_new (object, now);

  tocsin_template_scope_add_header (scope, "User-Agent", "Grafana/10.2");
  tocsin_template_scope_add_header (scope, "X-Request-Id", "abc-123");
  tocsin_template_scope_add_header (scope, "X-Dup", "one");
  tocsin_template_scope_add_header (scope, "x-dup", "two");
  tocsin_template_scope_set_body_text (scope, "disk /var is 91% full");
  return scope;
}

static const RenderCase render_cases[] = {
  /* Echobell's own examples */
  { "echobell-title", "Alerte serveur {{server_name}}", "Alerte serveur Production" },
  { "echobell-body", "L'utilisation du CPU a atteint {{cpu_usage}}%",
    "L'utilisation du CPU a atteint 95%" },
  { "echobell-get-vars", "{{server_name}} {{cpu_usage}}", "Production 95",
    "{'server_name': 'Production', 'cpu_usage': '95'}" },
  /* text and interpolation */
  { "plain-text", "no braces at all", "no braces at all" },
  { "empty", "", "" },
  { "spaces-in-braces", "{{   server_name   }}", "Production" },
  { "newlines-in-braces", "{{\n server_name\n}}", "Production" },
  { "adjacent", "{{server_name}}{{cpu_usage}}", "Production95" },
  { "multi-line", "Line 1\n{{server_name}}\nLine 3", "Line 1\nProduction\nLine 3" },
  { "unicode-text", "Température {{accent}} 🚀", "Température été 🚀" },
  { "html-not-escaped", "{{html}}", "<b>x</b>" },
  { "quotes-in-var", "{{quote}}", "say \"hi\"" },
  { "newline-in-var", "{{multi}}", "a\nb" },
  { "unicode-identifier", "{{température}}°", "21°" },
  { "dollar-identifier", "{{$dollar}}", "d" },
  /* missing and empty values */
  { "missing", "[{{missing_var}}]", "[]" },
  { "missing-no-vars", "[{{server_name}}]", "[]", "{}" },
  { "null", "[{{nothing}}]", "[]" },
  { "undefined-literal", "[{{undefined}}]", "[]" },
  { "null-literal", "[{{null}}]", "[]" },
  { "empty-string", "[{{empty}}]", "[]" },
  /* numbers render as JavaScript writes them */
  { "number-int", "{{cpu_usage}}", "95" },
  { "number-float", "{{load}}", "95.5" },
  { "number-literal-trailing-zero", "{{1.50}}", "1.5" },
  { "number-literal-point-zero", "{{2.0}}", "2" },
  { "number-big-int-exact", "{{big}}", "9007199254740993" },
  { "number-negative", "{{neg}}", "-3" },
  { "number-exponent-large", "{{1e21}}", "1e+21" },
  { "number-just-below-exponent", "{{123456789012345680000}}", "123456789012345680000" },
  { "number-exponent-small", "{{1e-7}}", "1e-7" },
  { "number-small-plain", "{{0.000001}}", "0.000001" },
  { "number-leading-dot", "{{.5}}", "0.5" },
  { "number-hex", "{{0x1F}}", "31" },
  { "number-float-sum", "{{0.1 + 0.2}}", "0.30000000000000004" },
  { "number-division", "{{100 / 3}}", "33.333333333333336" },
  { "number-zero-negative", "{{-0}}", "0" },
  /* other types */
  { "bool-true", "{{yes}}", "true" },
  { "bool-false", "{{no}}", "false" },
  { "bool-literal", "{{true}}/{{false}}", "true/false" },
  { "object-json", "{{user.address}}", "{\"city\":\"Paris\"}" },
  { "array-json", "{{user.roles}}", "[\"admin\",\"dev\"]" },
  { "mixed-array-json", "{{tags}}", "[\"urgent\",\"db\",3]" },
  { "nested-object-json", "{{user}}",
    "{\"name\":\"Ada\",\"roles\":[\"admin\",\"dev\"],\"address\":{\"city\":\"Paris\"}}" },
  { "empty-object-json", "{{empty_obj}}", "{}" },
  { "empty-array-json", "{{empty_arr}}", "[]" },
  { "json-escapes", "{{obj}}", "{\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"n\":null,\"f\":1.5,\"b\":false}",
    "{'obj': {'s': 'a\\'b\\\\c\\n\\u0001', 'n': null, 'f': 1.50, 'b': false}}" },
  /* paths */
  { "dotted", "{{user.name}}", "Ada" },
  { "dotted-deep", "{{user.address.city}}", "Paris" },
  { "bracket-double-quote", "{{data[\"value\"]}}", "42" },
  { "bracket-single-quote", "{{data['key-with-dash']}}", "dash" },
  { "alertmanager-path", "{{alerts[0].labels.alertname}}", "HighCPU" },
  { "dot-index", "{{alerts.0.labels.severity}}", "critical" },
  { "index-out-of-range", "[{{alerts[5].labels}}]", "[]" },
  { "index-negative", "[{{tags[-1]}}]", "[]" },
  { "index-fraction", "[{{tags[0.5]}}]", "[]" },
  { "index-string-number", "{{tags[\"1\"]}}", "db" },
  { "index-computed", "{{user[\"na\" + \"me\"]}}", "Ada" },
  { "index-number-on-object", "{{data[0]}}", "zero-key" },
  { "member-of-missing", "[{{missing.deep.path}}]", "[]" },
  { "member-of-null", "[{{nothing.x}}]", "[]" },
  { "member-of-number", "[{{cpu_usage.x}}]", "[]" },
  { "member-of-string", "[{{server_name.foo}}]", "[]" },
  { "string-index", "{{server_name[0]}}", "P" },
  { "string-index-emoji", "{{emoji[7]}}", "🚀" },
  { "string-index-emoji-second-half", "{{emoji[8]}}", "\xEF\xBF\xBD" },
  { "array-length", "{{tags.length}}", "3" },
  { "string-length", "{{server_name.length}}", "10" },
  { "string-length-accents", "{{accent.length}}", "3" },
  { "string-length-utf16", "{{emoji.length}}", "14" },
  { "length-of-missing", "[{{missing.length}}]", "[]" },
  { "length-member-of-object", "{{o.length}}", "7", "{'o': {'length': 7}}" },
  /* string literals */
  { "string-double", "{{\"a\" + 'b'}}", "ab" },
  { "string-escape-tab", "{{\"tab\\there\"}}", "tab\there" },
  { "string-escape-newline", "{{'a\\nb'}}", "a\nb" },
  { "string-escape-quote", "{{'it\\'s'}}", "it's" },
  { "string-escape-backslash", "{{\"a\\\\b\"}}", "a\\b" },
  { "string-escape-u", "{{\"\\u00e9\"}}", "é" },
  { "string-escape-u-brace", "{{\"\\u{1F680}\"}}", "🚀" },
  { "string-escape-surrogate-pair", "{{\"\\ud83d\\ude80\"}}", "🚀" },
  { "string-escape-lone-surrogate", "{{\"\\ud83d!\"}}", "\xEF\xBF\xBD!" },
  { "string-escape-x", "{{\"\\x41\"}}", "A" },
  { "string-escape-nul", "{{\"a\\0b\"}}", "a\xEF\xBF\xBD" "b" },
  { "string-escape-unknown", "{{\"\\q\"}}", "q" },
  { "string-with-close-braces", "{{\"}}\"}}", "}}" },
  { "string-with-open-braces", "{{'{{'}}x{{'}}'}}", "{{x}}" },
  /* data is never evaluated again */
  { "bomb-variable", "{{template_bomb}}", "{{server_name}}" },
  { "bomb-variable-nested", "{{nested_bomb}}{{nested_bomb}}", "{{x}}{{x}}{{x}}{{x}}" },
  { "bomb-concat", "{{template_bomb + template_bomb}}", "{{server_name}}{{server_name}}" },
  /* lone braces are text */
  { "lone-close", "a }} b", "a }} b" },
  { "lone-single-braces", "{ {x} }", "{ {x} }" },
  { "close-after-expression", "{{cpu_usage}}}", "95}" },
  { "json-looking-text", "{\"a\": 1}", "{\"a\": 1}" },
  /* + */
  { "add-numbers", "{{cpu_usage + 1}}", "96" },
  { "concat-string-number", "{{\"n\" + 1}}", "n1" },
  { "concat-numeric-string", "{{num_str + 1}}", "951" },
  { "concat-missing", "{{missing + \"x\"}}", "x" },
  { "concat-null", "{{nothing + \"x\"}}", "x" },
  { "concat-object", "{{\"u:\" + user.address}}", "u:{\"city\":\"Paris\"}" },
  { "concat-bool", "{{yes + 1}}", "true1" },
  { "concat-chain", "{{user.name + \" <\" + server_name + \">\"}}", "Ada <Production>" },
  /* other arithmetic, with JavaScript's ToNumber */
  { "subtract", "{{cpu_usage - 5}}", "90" },
  { "multiply", "{{2 * 3}}", "6" },
  { "divide", "{{7 / 2}}", "3.5" },
  { "modulo", "{{7 % 3}}", "1" },
  { "modulo-negative", "{{-7 % 3}}", "-1" },
  { "divide-by-zero", "{{1 / 0}}", "Infinity" },
  { "divide-negative-zero", "{{-1 / 0}}", "-Infinity" },
  { "zero-by-zero", "{{0 / 0}}", "NaN" },
  { "multiply-numeric-string", "{{num_str * 2}}", "190" },
  { "multiply-bad-string", "{{nan_str * 2}}", "NaN" },
  { "multiply-null", "{{nothing * 2}}", "0" },
  { "multiply-missing", "{{missing * 2}}", "NaN" },
  { "subtract-hex-string", "{{hex - 1}}", "30" },
  { "negate", "{{-cpu_usage}}", "-95" },
  { "unary-plus-string", "{{+num_str}}", "95" },
  { "unary-plus-spaces", "{{+ws_num}}", "42" },
  { "unary-plus-empty", "{{+empty}}", "0" },
  { "unary-plus-bad", "{{+nan_str}}", "NaN" },
  { "unary-plus-true", "{{+yes}}", "1" },
  { "unary-plus-units", "{{+'12px'}}", "NaN" },
  { "precedence-mul", "{{1 + 2 * 3}}", "7" },
  { "precedence-parens", "{{(1 + 2) * 3}}", "9" },
  { "precedence-concat-left", "{{1 + 2 + 'x'}}", "3x" },
  { "precedence-concat-right", "{{'x' + 1 + 2}}", "x12" },
  /* || && ?? ?: ! */
  { "or-default-empty", "{{host || \"unknown\"}}", "unknown" },
  { "or-default-missing", "{{missing || \"unknown\"}}", "unknown" },
  { "or-keeps-truthy", "{{server_name || \"unknown\"}}", "Production" },
  { "or-zero", "{{zero || 7}}", "7" },
  { "or-string-zero-is-truthy", "{{zero_str || 7}}", "0" },
  { "or-returns-operand", "{{empty_arr || 1}}", "[]" },
  { "and-returns-right", "{{yes && \"ok\"}}", "ok" },
  { "and-returns-false", "{{no && \"ok\"}}", "false" },
  { "and-returns-empty", "[{{empty && \"ok\"}}]", "[]" },
  { "and-returns-zero", "{{zero && 1}}", "0" },
  { "nullish-null", "{{nothing ?? \"dflt\"}}", "dflt" },
  { "nullish-zero", "{{zero ?? 5}}", "0" },
  { "ternary", "{{cpu_usage > 90 ? \"HIGH\" : \"ok\"}}", "HIGH" },
  { "ternary-nested", "{{cpu_usage > 99 ? \"crit\" : cpu_usage > 90 ? \"high\" : \"ok\"}}",
    "high" },
  { "ternary-missing", "{{missing ? 'y' : 'n'}}", "n" },
  { "not", "{{!yes}}", "false" },
  { "not-not", "{{!!server_name}}", "true" },
  { "not-empty", "{{!empty}}", "true" },
  { "not-string-zero", "{{!zero_str}}", "false" },
  /* comparisons, rendered */
  { "string-compare-by-chars", "{{\"100\" < \"20\"}}", "true" },
  { "string-vars-compare-by-chars", "{{version < v2}}", "true" },
  { "number-compare", "{{n100 < n20}}", "false" },
  { "string-number-compare-numeric", "{{\"100\" < 20}}", "false" },
  { "compare-utf16-order", "{{\"\\uFF5E\" < \"\\u{1F600}\"}}", "false" },
  { "compare-accent", "{{\"é\" > \"z\"}}", "true" },
  { "compare-missing", "{{missing < 1}}/{{missing >= 0}}", "false/false" },
  { "compare-null-as-zero", "{{nothing >= 0}}/{{nothing < 1}}", "true/true" },
  { "compare-empty-string-as-zero", "{{\"\" < 1}}", "true" },
  { "compare-nan", "{{nan_str < 1}}/{{nan_str >= 1}}", "false/false" },
  { "loose-string-number", "{{num_str == 95}}", "true" },
  { "strict-string-number", "{{num_str === 95}}", "false" },
  { "loose-null-undefined", "{{nothing == missing}}", "true" },
  { "strict-null-undefined", "{{nothing === missing}}", "false" },
  { "loose-empty-zero", "{{empty == 0}}", "true" },
  { "loose-true-one", "{{yes == 1}}", "true" },
  { "loose-true-string-one", "{{yes == \"1\"}}", "true" },
  { "loose-false-empty", "{{no == \"\"}}", "true" },
  { "loose-null-zero", "{{nothing == 0}}", "false" },
  { "loose-undefined-empty", "{{missing == \"\"}}", "false" },
  { "loose-null-false", "{{nothing == false}}", "false" },
  { "loose-spaces-number", "{{ws_num == 42}}", "true" },
  { "loose-hex-number", "{{hex == 31}}", "true" },
  { "loose-exponent-number", "{{exp == 1000}}", "true" },
  { "loose-nan", "{{0 / 0 == 0 / 0}}", "false" },
  { "loose-object-identity", "{{user.address == user.address}}", "true" },
  { "loose-objects-differ", "{{user == data}}", "false" },
  { "not-equal", "{{\"a\" != \"b\"}}", "true" },
  { "strict-not-equal", "{{1 !== 1}}", "false" },
  /* string methods */
  { "upper", "{{server_name.toUpperCase()}}", "PRODUCTION" },
  { "lower", "{{server_name.toLowerCase()}}", "production" },
  { "upper-accent", "{{accent.toUpperCase()}}", "ÉTÉ" },
  { "upper-sharp-s", "{{ss.toUpperCase()}}", "STRASSE" },
  { "lower-accent", "{{'ÉCOLE'.toLowerCase()}}", "école" },
  { "trim", "[{{spaces.trim()}}]", "[padded]" },
  { "trim-unicode-spaces", "[{{nbsp.trim()}}]", "[x]" },
  { "includes", "{{server_name.includes(\"duct\")}}", "true" },
  { "includes-emoji", "{{emoji.includes(\"🚀\")}}", "true" },
  { "includes-empty", "{{server_name.includes(\"\")}}", "true" },
  { "includes-missing-arg", "{{server_name.includes(missing)}}", "false" },
  { "includes-number-arg", "{{'port 8080'.includes(8080)}}", "true" },
  { "starts-with", "{{server_name.startsWith(\"Prod\")}}", "true" },
  { "ends-with", "{{server_name.endsWith(\"tion\")}}", "true" },
  { "ends-with-false", "{{server_name.endsWith(\"Prod\")}}", "false" },
  { "array-includes", "{{tags.includes(\"db\")}}", "true" },
  { "array-includes-number", "{{tags.includes(3)}}", "true" },
  { "array-includes-strict", "{{tags.includes(\"3\")}}", "false" },
  { "method-on-number", "[{{cpu_usage.toUpperCase()}}]", "[]" },
  { "method-on-missing", "[{{missing.trim()}}]", "[]" },
  { "method-on-null", "[{{nothing.includes('x')}}]", "[]" },
  { "to-string", "{{cpu_usage.toString() + 1}}", "951" },
  { "to-string-concat-owned", "{{(server_name + '!').toString()}}", "Production!" },
  { "method-chain", "{{user.name.toUpperCase().startsWith(\"AD\")}}", "true" },
  { "method-on-expression", "{{(server_name + \" x\").toUpperCase()}}", "PRODUCTION X" },
  { "method-on-literal", "{{' a '.trim().length}}", "1" },
  /* the clock */
  { "clock-timezone", "{{timezone}}", "UTC" },
  { "clock-iso", "{{iso}}", "2026-11-23T16:40:00.123Z" },
  { "clock-now", "{{now}}", "2026-11-23T16:40:00.123Z" },
  { "clock-epoch-ms", "{{epochMs}}", "1795452000123" },
  { "clock-epoch-seconds", "{{epochSeconds}}", "1795452000" },
  { "clock-year", "{{year}}", "2026" },
  { "clock-month", "{{month}}", "11" },
  { "clock-month-name", "{{monthName}}", "November" },
  { "clock-day-of-month", "{{dayOfMonth}}", "23" },
  { "clock-day-of-week", "{{dayOfWeek}}", "1" },
  { "clock-day-of-week-name", "{{dayOfWeekName}}", "Monday" },
  { "clock-hour", "{{hour}}", "16" },
  { "clock-minute", "{{minute}}", "40" },
  { "clock-second", "{{second}}", "0" },
  { "clock-date", "{{date}}", "2026-11-23" },
  { "clock-time", "{{time}}", "16:40:00" },
  { "clock-arithmetic", "{{hour + 1}}h", "17h" },
  { "clock-overridden-by-var", "{{hour}}/{{date}}", "late/2026-11-23", "{'hour': 'late'}" },
  /* request headers and body */
  { "header", "{{header[\"user-agent\"]}}", "Grafana/10.2" },
  { "header-any-case", "{{header[\"User-Agent\"]}}", "Grafana/10.2" },
  { "header-repeated", "{{header['x-dup']}}", "one, two" },
  { "header-missing", "[{{header['x-nope']}}]", "[]" },
  { "header-not-overridden", "{{header['user-agent']}}", "Grafana/10.2",
    "{'header': {'user-agent': 'fake'}}" },
  { "body-as-text", "{{bodyAsText}}", "disk /var is 91% full" },
  { "body-not-overridden", "{{bodyAsText}}", "disk /var is 91% full", "{'bodyAsText': 'fake'}" },
};

static const ConditionCase condition_cases[] = {
  { "empty", "", TRUE },
  { "whitespace", "  \n\t ", TRUE },
  { "office-hours", "hour >= 9 && hour < 17", TRUE },
  { "outside-office-hours", "hour < 9 || hour >= 17", FALSE },
  { "weekday", "dayOfWeek >= 1 && dayOfWeek <= 5", TRUE },
  { "status-firing", "status == \"firing\"", TRUE },
  { "status-resolved", "status == \"resolved\"", FALSE },
  { "header-includes", "header[\"user-agent\"].includes(\"Grafana\")", TRUE },
  { "header-not-includes", "header[\"user-agent\"].includes(\"curl\")", FALSE },
  { "missing-is-false", "missing_var", FALSE },
  { "not-missing-is-true", "!missing_var", TRUE },
  { "missing-member-is-false", "missing.deep == 'x'", FALSE },
  { "string-zero-truthy", "zero_str", TRUE },
  { "string-false-truthy", "'false'", TRUE },
  { "empty-string-falsy", "empty", FALSE },
  { "zero-falsy", "zero", FALSE },
  { "nan-falsy", "0 / 0", FALSE },
  { "null-falsy", "nothing", FALSE },
  { "false-falsy", "no", FALSE },
  { "object-truthy", "user", TRUE },
  { "empty-object-truthy", "empty_obj", TRUE },
  { "empty-array-truthy", "empty_arr", TRUE },
  { "loose-string-number", "num_str == 95", TRUE },
  { "loose-not-equal", "'95' != 95", FALSE },
  { "loose-null-undefined", "nothing == missing", TRUE },
  { "loose-empty-zero", "\"\" == 0", TRUE },
  { "loose-true-one", "yes == 1", TRUE },
  { "loose-string-true", "\"1\" == yes", TRUE },
  { "loose-null-false", "nothing == false", FALSE },
  { "string-compare", "\"100\" < \"20\"", TRUE },
  { "string-number-compare", "\"100\" < 20", FALSE },
  { "number-string-compare", "cpu_usage > \"90\"", TRUE },
  { "alertmanager", "alerts[0].labels.severity == \"critical\" && status == \"firing\"", TRUE },
  { "array-includes", "tags.includes(\"urgent\")", TRUE },
  { "body-includes", "bodyAsText.includes(\"disk\")", TRUE },
  { "ternary", "cpu_usage > 90 ? true : false", TRUE },
  { "emoji-includes", "emoji.includes(\"🚀\")", TRUE },
  { "upper-compare", "accent.toUpperCase() == \"ÉTÉ\"", TRUE },
  { "length", "server_name.length > 5", TRUE },
  { "parens-equal-true", "(status == \"firing\") == true", TRUE },
  { "missing-length", "missing.length > 0", FALSE },
  { "not-parens", "!(cpu_usage < 50)", TRUE },
  { "multi-line", "status == \"firing\"\n  && yes", TRUE },
  { "or-default", "(host || 'unknown') == 'unknown'", TRUE },
  { "no-vars", "server_name", FALSE, "{}" },
  { "var-hour-wins", "hour == 'late'", TRUE, "{'hour': 'late'}" },
};

static const ErrorCase error_cases[] = {
  { "unclosed-at-end", "title", FALSE, "{{", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 3: unexpected end of expression" },
  { "expected-close", "body", FALSE, "Hello {{name x}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "body, column 14: expected '}}'" },
  { "expected-close-at-end", "body", FALSE, "CPU: {{cpu_usage", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "body, column 17: expected '}}'" },
  { "unknown-method", "condition", TRUE, "abc.foo()", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "condition, column 5: unknown method 'foo'" },
  { "unknown-method-in-template", "title", FALSE, "{{x.replace('a', 'b')}}",
    TOCSIN_TEMPLATE_ERROR_SYNTAX, "title, column 5: unknown method 'replace'" },
  { "empty-braces", "title", FALSE, "{{}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 3: expected an expression before '}}'" },
  { "unterminated-string", "title", FALSE, "{{ \"abc }}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 4: unterminated string" },
  { "unterminated-single-quote", "title", FALSE, "{{'abc", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 3: unterminated string" },
  { "string-across-lines", "body", FALSE, "{{'a\nb'}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "body, line 1, column 3: unterminated string" },
  { "nested-braces", "title", FALSE, "{{ {{x}} }}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 4: unexpected '{{': expressions cannot be nested" },
  { "triple-braces", "title", FALSE, "{{{x}}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 3: unexpected '{'" },
  { "single-close", "title", FALSE, "{{x}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 4: expected '}}'" },
  { "dot-without-name", "title", FALSE, "{{a.}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 5: expected a property name after '.'" },
  { "double-dot", "title", FALSE, "{{a..b}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 5: expected a property name after '.'" },
  { "unclosed-bracket", "title", FALSE, "{{a[0}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 6: expected ']'" },
  { "unclosed-paren", "title", FALSE, "{{(a}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 5: expected ')'" },
  { "ternary-without-colon", "title", FALSE, "{{a ? b}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 8: expected ':'" },
  { "assignment", "condition", TRUE, "status = 'firing'", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "condition, column 8: unexpected '=': write '==' to compare" },
  { "single-ampersand", "condition", TRUE, "a & b", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "condition, column 3: unexpected '&': write '&&'" },
  { "single-pipe", "condition", TRUE, "a | b", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "condition, column 3: unexpected '|': write '||'" },
  { "unknown-character", "title", FALSE, "{{a # b}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 5: unexpected character '#'" },
  { "unknown-character-unicode", "title", FALSE, "{{a → b}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 5: unexpected character '→'" },
  { "number-with-units", "title", FALSE, "{{3px}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 3: invalid number" },
  { "number-bad-exponent", "title", FALSE, "{{1e}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 3: invalid number" },
  { "bad-unicode-escape", "title", FALSE, "{{\"\\u12\"}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 4: invalid escape sequence" },
  { "unicode-escape-too-large", "title", FALSE, "{{\"\\u{110000}\"}}",
    TOCSIN_TEMPLATE_ERROR_SYNTAX, "title, column 4: invalid escape sequence" },
  { "bad-hex-escape", "title", FALSE, "{{'\\xZZ'}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 4: invalid escape sequence" },
  { "method-extra-argument", "title", FALSE, "{{x.trim(1)}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 10: method 'trim' takes no arguments" },
  { "method-missing-argument", "title", FALSE, "{{x.includes()}}",
    TOCSIN_TEMPLATE_ERROR_SYNTAX, "title, column 14: method 'includes' takes one argument" },
  { "method-two-arguments", "title", FALSE, "{{x.includes(a, b)}}",
    TOCSIN_TEMPLATE_ERROR_SYNTAX, "title, column 17: method 'includes' takes one argument" },
  { "method-unclosed", "title", FALSE, "{{x.includes(a}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 15: expected ')'" },
  { "call-of-variable", "title", FALSE, "{{foo()}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 6: expected '}}'" },
  { "two-names", "title", FALSE, "{{a b}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 5: expected '}}'" },
  { "operator-without-operand", "title", FALSE, "{{a +}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 6: expected an expression before '}}'" },
  { "stray-paren", "title", FALSE, "{{)}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 3: unexpected ')'" },
  { "stray-string", "title", FALSE, "{{a 'x'}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 5: expected '}}'" },
  { "second-expression-bad", "body", FALSE, "{{a}} and {{b +* c}}",
    TOCSIN_TEMPLATE_ERROR_SYNTAX, "body, column 16: unexpected '*'" },
  { "multi-line", "body", FALSE, "Line one\nsecond {{ oops", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "body, line 2, column 15: expected '}}'" },
  { "columns-count-characters", "title", FALSE, "été {{", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 7: unexpected end of expression" },
  { "columns-count-emoji", "title", FALSE, "🚀{{ ) }}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 5: unexpected ')'" },
  { "condition-with-braces", "condition", TRUE, "{{status}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "condition, column 1: write the condition without '{{' and '}}'" },
  { "condition-dangling-and", "condition", TRUE, "a &&", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "condition, column 5: unexpected end of expression" },
  { "condition-two-names", "condition", TRUE, "a b", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "condition, column 3: unexpected 'b'" },
  { "condition-trailing-number", "condition", TRUE, "a 5", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "condition, column 3: unexpected number 5" },
  { "condition-close-brace", "condition", TRUE, "a }", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "condition, column 3: unexpected '}'" },
  { "condition-unclosed-paren", "condition", TRUE, "(a", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "condition, column 3: expected ')'" },
  { "condition-multi-line", "condition", TRUE, "status == 'firing' &&\n  foo.bar(",
    TOCSIN_TEMPLATE_ERROR_SYNTAX, "condition, line 2, column 7: unknown method 'bar'" },
  { "invalid-utf8", "title", FALSE, "ab\xff{{x}}", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "title, column 3: the text is not valid UTF-8" },
  { "default-field-name", NULL, FALSE, "{{", TOCSIN_TEMPLATE_ERROR_SYNTAX,
    "template, column 3: unexpected end of expression" },
};

/* ---- runners ---- */

static void
test_render_case (gconstpointer data)
{
  const RenderCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinTemplate) template = tocsin_template_new ("body", c->source, &error);
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autofree char *text = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (template);
  scope = make_scope (c->vars);
  text = tocsin_template_render (template, scope, NULL);
  g_assert_cmpstr (text, ==, c->expected);
  g_assert_true (g_utf8_validate (text, -1, NULL));
}

static void
test_condition_case (gconstpointer data)
{
  const ConditionCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinTemplate) condition = tocsin_template_new_condition ("condition", c->source,
                                                                       &error);
  g_autoptr(TocsinTemplateScope) scope = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (condition);
  scope = make_scope (c->vars);
  if (c->expected)
    g_assert_true (tocsin_template_evaluate (condition, scope, NULL));
  else
    g_assert_false (tocsin_template_evaluate (condition, scope, NULL));
}

static void
test_error_case (gconstpointer data)
{
  const ErrorCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinTemplate) template = NULL;
  guint line = 0, column = 0;
  gsize offset = 0;
  g_autofree char *column_text = NULL;

  if (c->condition)
    template = tocsin_template_new_condition (c->field, c->source, &error);
  else
    template = tocsin_template_new (c->field, c->source, &error);
  g_assert_null (template);
  g_assert_error (error, TOCSIN_TEMPLATE_ERROR, (gint) c->code);
  g_assert_cmpstr (error->message, ==, c->message);

  /* The position API agrees with the message. */
  g_assert_true (tocsin_template_error_get_position (error, &line, &column, &offset));
  column_text = g_strdup_printf ("column %u: ", column);
  g_assert_nonnull (strstr (error->message, column_text));
  g_assert_cmpuint (offset, <=, strlen (c->source));
  g_assert_cmpuint (line, >=, 1);
  g_assert_true (g_str_has_suffix (error->message, tocsin_template_error_get_reason (error)));
}

/* ---- single tests ---- */

static void
test_error_position (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) copy = NULL;
  g_autoptr(TocsinTemplate) template = NULL;
  guint line = 0, column = 0;
  gsize offset = 0;

  template = tocsin_template_new ("body", "Ligne\nété {{ x y }}", &error);
  g_assert_null (template);
  g_assert_true (tocsin_template_error_get_position (error, &line, &column, &offset));
  g_assert_cmpuint (line, ==, 2);
  g_assert_cmpuint (column, ==, 10);
  /* "Ligne\n" is 6 bytes, "été " 6 bytes, "{{ x " 5 bytes: y is at byte 17 */
  g_assert_cmpuint (offset, ==, 17);
  g_assert_cmpstr (tocsin_template_error_get_reason (error), ==, "expected '}}'");

  /* Copies keep the position (the relay may propagate the error). */
  copy = g_error_copy (error);
  line = column = 0;
  g_assert_true (tocsin_template_error_get_position (copy, &line, &column, NULL));
  g_assert_cmpuint (line, ==, 2);
  g_assert_cmpuint (column, ==, 10);

  /* Foreign errors have no position. */
  g_clear_error (&error);
  g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "x");
  g_assert_false (tocsin_template_error_get_position (error, NULL, NULL, NULL));
  g_assert_null (tocsin_template_error_get_reason (error));
}

static void
test_error_too_long (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *source = g_strnfill (TOCSIN_TEMPLATE_MAX_SOURCE + 1, 'a');
  g_autoptr(TocsinTemplate) template = tocsin_template_new ("body", source, &error);
  g_autoptr(TocsinTemplate) at_limit = NULL;

  g_assert_null (template);
  g_assert_error (error, TOCSIN_TEMPLATE_ERROR, TOCSIN_TEMPLATE_ERROR_TOO_LARGE);
  g_assert_cmpstr (error->message, ==, "body: the template is longer than 16384 bytes");
  g_assert_false (tocsin_template_error_get_position (error, NULL, NULL, NULL));
  g_clear_error (&error);

  source[TOCSIN_TEMPLATE_MAX_SOURCE] = '\0';
  at_limit = tocsin_template_new ("body", source, &error);
  g_assert_no_error (error);
  g_assert_nonnull (at_limit);
}

/* A source made of @prefix repeated @n times, @middle, then @suffix repeated @n times. */
static char *
repeat_around (const char *prefix,
               const char *middle,
               const char *suffix,
               guint       n)
{
  GString *s = g_string_new ("{{");

  for (guint i = 0; i < n; i++)
    g_string_append (s, prefix);
  g_string_append (s, middle);
  for (guint i = 0; i < n; i++)
    g_string_append (s, suffix);
  g_string_append (s, "}}");
  return g_string_free (s, FALSE);
}

static void
assert_too_deep (const char *source)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinTemplate) template = tocsin_template_new ("title", source, &error);

  g_assert_null (template);
  g_assert_error (error, TOCSIN_TEMPLATE_ERROR, TOCSIN_TEMPLATE_ERROR_TOO_LARGE);
  g_assert_true (g_str_has_suffix (error->message,
                                   "the expression is nested more than 64 levels deep"));
  g_assert_true (tocsin_template_error_get_position (error, NULL, NULL, NULL));
}

static void
test_error_depth (void)
{
  g_autofree char *parens = repeat_around ("(", "x", ")", 100);
  g_autofree char *nots = repeat_around ("!", "x", "", 100);
  g_autofree char *plus = repeat_around ("", "x", "+x", 100);
  g_autofree char *members = repeat_around ("", "x", ".a", 100);
  g_autofree char *ternary = repeat_around ("x?", "x", ":x", 100);
  g_autofree char *brackets = repeat_around ("x[", "0", "]", 100);
  g_autofree char *huge = repeat_around ("(", "x", ")", 5000);

  assert_too_deep (parens);
  assert_too_deep (nots);
  assert_too_deep (plus);
  assert_too_deep (members);
  assert_too_deep (ternary);
  assert_too_deep (brackets);
  assert_too_deep (huge);
}

static void
test_depth_at_limit (void)
{
  /* 63 '!' and the variable: exactly TOCSIN_TEMPLATE_MAX_DEPTH nodes deep */
  g_autofree char *source = repeat_around ("!", "yes", "", TOCSIN_TEMPLATE_MAX_DEPTH - 1);
  g_autofree char *over = repeat_around ("!", "yes", "", TOCSIN_TEMPLATE_MAX_DEPTH);
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinTemplate) template = tocsin_template_new ("title", source, &error);
  g_autoptr(TocsinTemplateScope) scope = make_scope (NULL);
  g_autofree char *text = NULL;

  g_assert_no_error (error);
  text = tocsin_template_render (template, scope, NULL);
  /* 63 negations of true */
  g_assert_cmpstr (text, ==, "false");
  assert_too_deep (over);
}

static void
test_output_cap (void)
{
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(TocsinTemplate) template = NULL;
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autofree char *text = NULL;
  GString *big = g_string_new (NULL);

  /* "€" is three bytes and 65536 is not a multiple of three: a naive cut splits it */
  while (big->len < 100 * 1024)
    g_string_append (big, "€");
  json_object_set_string_member (vars, "big", big->str);
  g_string_free (big, TRUE);

  template = tocsin_template_new ("body", ">{{big}}<", NULL);
  scope = tocsin_template_scope_new (vars, NULL);
  text = tocsin_template_render (template, scope, NULL);
  g_assert_true (g_utf8_validate (text, -1, NULL));
  g_assert_cmpuint (strlen (text), <=, TOCSIN_TEMPLATE_MAX_OUTPUT);
  g_assert_cmpuint (strlen (text), >, TOCSIN_TEMPLATE_MAX_OUTPUT - 3);
  g_assert_true (g_str_has_prefix (text, ">€€"));
  g_assert_false (g_str_has_suffix (text, "<"));
  /* Cut, not refused: one long variable is well within the budget. */
  g_assert_true (tocsin_template_scope_check (scope, NULL));
}

/* A 64 KiB variable and a template that chains methods over it, as a hostile channel would. */
static TocsinTemplate *
chained_methods_template (guint repeats)
{
  GString *source = g_string_new (NULL);
  TocsinTemplate *template;

  for (guint i = 0; i < repeats; i++)
    g_string_append (source, "{{s.trim().toUpperCase().toLowerCase().trim().toString().length}}");
  template = tocsin_template_new ("body", source->str, NULL);
  g_string_free (source, TRUE);
  g_assert_nonnull (template);
  return template;
}

static JsonObject *
long_variable_vars (void)
{
  JsonObject *vars = json_object_new ();
  g_autofree char *s = g_strnfill (64 * 1024, 'x');

  json_object_set_string_member (vars, "s", s);
  return vars;
}

static void
test_budget_chained_methods (void)
{
  g_autoptr(JsonObject) vars = long_variable_vars ();
  g_autoptr(TocsinTemplate) template = chained_methods_template (200);
  g_autoptr(TocsinTemplate) condition = NULL;
  g_autoptr(TocsinTemplateScope) scope = tocsin_template_scope_new (vars, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *again = NULL;

  text = tocsin_template_render (template, scope, NULL);
  g_assert_cmpuint (strlen (text), ==, 0);
  g_assert_false (tocsin_template_scope_check (scope, &error));
  g_assert_error (error, TOCSIN_TEMPLATE_ERROR, TOCSIN_TEMPLATE_ERROR_BUDGET);
  g_assert_true (g_str_has_prefix (error->message, "The template did too much work: the body"));
  g_assert_nonnull (strstr (error->message, "simplify it"));
  g_assert_false (tocsin_template_error_get_position (error, NULL, NULL, NULL));

  /* The budget is the scope's: the webhook's other fields get nothing more. */
  condition = tocsin_template_new_condition ("condition", "true", NULL);
  g_assert_false (tocsin_template_evaluate (condition, scope, NULL));
  again = tocsin_template_render (template, scope, NULL);
  g_assert_cmpstr (again, ==, "");
}

static void
test_budget_condition (void)
{
  g_autoptr(JsonObject) vars = long_variable_vars ();
  g_autoptr(TocsinTemplateScope) scope = tocsin_template_scope_new (vars, NULL);
  g_autoptr(GError) error = NULL;
  GString *source = g_string_new ("s.toUpperCase().includes('Y')");
  g_autoptr(TocsinTemplate) condition = NULL;

  for (int i = 0; i < 40; i++)
    g_string_append (source, " || s.toUpperCase().includes('Y')");
  condition = tocsin_template_new_condition ("condition", source->str, NULL);
  g_string_free (source, TRUE);
  g_assert_nonnull (condition);
  g_assert_false (tocsin_template_evaluate (condition, scope, NULL));
  g_assert_false (tocsin_template_scope_check (scope, &error));
  g_assert_error (error, TOCSIN_TEMPLATE_ERROR, TOCSIN_TEMPLATE_ERROR_BUDGET);
  g_assert_true (g_str_has_prefix (error->message,
                                   "The template did too much work: the condition"));
}

static void
test_budget_array_and_objects (void)
{
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autoptr(TocsinTemplate) includes = NULL;
  g_autoptr(TocsinTemplate) compare = NULL;
  GString *source = g_string_new ("list.includes('nope')");
  JsonArray *list = json_array_new ();
  JsonObject *object = json_object_new ();
  g_autofree char *text = NULL;

  for (int i = 0; i < 100000; i++)
    json_array_add_int_element (list, i);
  json_object_set_array_member (vars, "list", list);
  json_object_set_string_member (object, "k", "v");
  json_object_set_object_member (vars, "obj", object);

  /* Each includes() looks at 100,000 elements. */
  for (int i = 0; i < 50; i++)
    g_string_append (source, " || list.includes('nope')");
  includes = tocsin_template_new_condition ("condition", source->str, NULL);
  g_string_free (source, TRUE);
  scope = tocsin_template_scope_new (vars, NULL);
  g_assert_false (tocsin_template_evaluate (includes, scope, NULL));
  g_assert_false (tocsin_template_scope_check (scope, NULL));
  g_clear_pointer (&scope, tocsin_template_scope_free);

  /* Comparing an object with a string writes its JSON: it costs the output cap. */
  source = g_string_new (NULL);
  for (int i = 0; i < 40; i++)
    g_string_append (source, "{{obj == 'x'}}");
  compare = tocsin_template_new ("title", source->str, NULL);
  g_string_free (source, TRUE);
  scope = tocsin_template_scope_new (vars, NULL);
  text = tocsin_template_render (compare, scope, NULL);
  g_assert_cmpstr (text, ==, "");
  g_assert_false (tocsin_template_scope_check (scope, NULL));
}

static void
test_budget_normal_unaffected (void)
{
  g_autoptr(JsonObject) vars = long_variable_vars ();
  g_autoptr(TocsinTemplate) template = chained_methods_template (4);
  g_autoptr(TocsinTemplate) condition = NULL;
  g_autoptr(TocsinTemplateScope) scope = tocsin_template_scope_new (vars, NULL);
  g_autofree char *text = NULL;

  /* A few methods over a 64 KiB variable, in every field: well within the budget. */
  condition = tocsin_template_new_condition ("condition",
                                             "s.length > 10 && s.trim().startsWith('x') "
                                             "&& !s.toUpperCase().includes('y')", NULL);
  g_assert_true (tocsin_template_evaluate (condition, scope, NULL));
  text = tocsin_template_render (template, scope, NULL);
  g_assert_cmpstr (text, ==, "65536655366553665536");
  g_assert_true (tocsin_template_scope_check (scope, NULL));
}

static void
test_json_escapes_like_the_relay (void)
{
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(TocsinTemplate) template = tocsin_template_new ("body", "{{obj}}", NULL);
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autofree char *text = NULL;
  JsonObject *object = json_object_new ();

  /* One escaper (tocsin_json_append_string): DEL is escaped too. */
  json_object_set_string_member (object, "k", "a\x7f\x01\"b");
  json_object_set_object_member (vars, "obj", object);
  scope = tocsin_template_scope_new (vars, NULL);
  text = tocsin_template_render (template, scope, NULL);
  g_assert_cmpstr (text, ==, "{\"k\":\"a\\u007f\\u0001\\\"b\"}");
}

static void
test_output_cap_concat_bomb (void)
{
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(TocsinTemplate) template = NULL;
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autofree char *text = NULL;
  g_autofree char *chunk = g_strnfill (40 * 1024, 'x');
  GString *source = g_string_new ("{{s");

  /* 60 x 40 KiB uncapped; every intermediate string stops at the output cap instead. */
  json_object_set_string_member (vars, "s", chunk);
  for (int i = 1; i < 60; i++)
    g_string_append (source, " + s");
  g_string_append (source, "}}");
  template = tocsin_template_new ("body", source->str, NULL);
  g_string_free (source, TRUE);
  g_assert_nonnull (template);
  scope = tocsin_template_scope_new (vars, NULL);
  text = tocsin_template_render (template, scope, NULL);
  /* Each + writes up to 64 KiB: 59 of them are more work than one webhook may do. */
  g_assert_cmpstr (text, ==, "");
  g_assert_false (tocsin_template_scope_check (scope, NULL));
}

static void
test_output_cap_json (void)
{
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(TocsinTemplate) template = tocsin_template_new ("body", "{{list}}", NULL);
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autofree char *text = NULL;
  JsonArray *list = json_array_new ();

  for (int i = 0; i < 20000; i++)
    json_array_add_string_element (list, "éléments");
  json_object_set_array_member (vars, "list", list);
  scope = tocsin_template_scope_new (vars, NULL);
  text = tocsin_template_render (template, scope, NULL);
  g_assert_true (g_utf8_validate (text, -1, NULL));
  g_assert_cmpuint (strlen (text), <=, TOCSIN_TEMPLATE_MAX_OUTPUT);
  g_assert_true (g_str_has_prefix (text, "[\"éléments\",\"éléments\""));
}

static void
test_invalid_utf8_inputs (void)
{
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(TocsinTemplate) template = NULL;
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autofree char *text = NULL;
  JsonObject *inner = json_object_new ();

  json_object_set_string_member (vars, "bad", "a\xff" "b");
  json_object_set_string_member (inner, "k", "\xc3(");
  json_object_set_object_member (vars, "obj", inner);
  template = tocsin_template_new ("body",
                                  "{{bad}}|{{bad.length}}|{{obj}}|{{header['x-bad']}}|"
                                  "{{bodyAsText}}|{{bad.toUpperCase()}}",
                                  NULL);
  scope = tocsin_template_scope_new (vars, NULL);
  tocsin_template_scope_add_header (scope, "X-Bad", "v\xff");
  tocsin_template_scope_add_header (scope, "X-Worse\xfe", "w");
  tocsin_template_scope_set_body_text (scope, "body\xc0");
  text = tocsin_template_render (template, scope, NULL);
  g_assert_true (g_utf8_validate (text, -1, NULL));
  g_assert_cmpstr (text, ==,
                   "a\xEF\xBF\xBD" "b|3|{\"k\":\"\xEF\xBF\xBD(\"}|v\xEF\xBF\xBD|"
                   "body\xEF\xBF\xBD|A\xEF\xBF\xBD" "B");
}

static void
test_missing (void)
{
  g_autoptr(TocsinTemplate) template = NULL;
  g_autoptr(TocsinTemplateScope) scope = make_scope (NULL);
  g_autoptr(GPtrArray) missing = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *text = NULL;

  template = tocsin_template_new ("body",
                                  "{{a}} {{b.c}} {{a}} {{server_name}} {{hour}} "
                                  "{{header['x']}} {{bodyAsText}} {{server_name || d}} "
                                  "{{empty || e}} {{no && f}}",
                                  NULL);
  g_ptr_array_add (missing, g_strdup ("e")); /* from an earlier field */
  text = tocsin_template_render (template, scope, missing);
  g_assert_cmpstr (text, ==, "   Production 16  disk /var is 91% full Production  false");
  /* unique, in reading order; d and f were never read; e was already listed */
  g_assert_cmpuint (missing->len, ==, 3);
  g_assert_cmpstr (g_ptr_array_index (missing, 0), ==, "e");
  g_assert_cmpstr (g_ptr_array_index (missing, 1), ==, "a");
  g_assert_cmpstr (g_ptr_array_index (missing, 2), ==, "b");
}

static void
test_missing_condition (void)
{
  g_autoptr(TocsinTemplate) condition = tocsin_template_new_condition (
    "condition", "severity == 'critical' || status == 'firing'", NULL);
  g_autoptr(TocsinTemplateScope) scope = make_scope (NULL);
  g_autoptr(GPtrArray) missing = g_ptr_array_new_with_free_func (g_free);

  g_assert_true (tocsin_template_evaluate (condition, scope, missing));
  g_assert_cmpuint (missing->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (missing, 0), ==, "severity");
}

static void
test_variables (void)
{
  g_autoptr(TocsinTemplate) template = tocsin_template_new (
    "body", "{{zeta}} {{alpha.beta}} {{zeta}} {{hour}} {{header['a']}} {{bodyAsText}} "
    "{{m[k]}} {{'lit'}} {{true}} {{x.includes(y)}}", NULL);
  g_autoptr(TocsinTemplate) empty = tocsin_template_new ("body", "no variables", NULL);
  g_autoptr(TocsinTemplate) condition = tocsin_template_new_condition (
    "condition", "b > 1 && a", NULL);
  const char * const expected[] = { "alpha", "k", "m", "x", "y", "zeta", NULL };
  const char * const expected_condition[] = { "a", "b", NULL };
  const char * const *vars = tocsin_template_get_variables (template);

  g_assert_cmpstrv (vars, expected);
  g_assert_cmpuint (g_strv_length ((char **) tocsin_template_get_variables (empty)), ==, 0);
  g_assert_cmpstrv (tocsin_template_get_variables (condition), expected_condition);
}

static void
test_empty_and_source (void)
{
  g_autoptr(TocsinTemplate) null_template = tocsin_template_new ("title", NULL, NULL);
  g_autoptr(TocsinTemplate) null_condition = tocsin_template_new_condition ("c", NULL, NULL);
  g_autoptr(TocsinTemplate) blank_condition = tocsin_template_new_condition ("c", " \n", NULL);
  g_autoptr(TocsinTemplate) text = tocsin_template_new ("title", "Hi {{x}}", NULL);
  g_autoptr(TocsinTemplateScope) scope = tocsin_template_scope_new (NULL, NULL);
  g_autofree char *rendered = tocsin_template_render (null_template, scope, NULL);

  g_assert_cmpstr (rendered, ==, "");
  g_assert_true (tocsin_template_is_empty (null_template));
  g_assert_true (tocsin_template_is_empty (null_condition));
  g_assert_true (tocsin_template_is_empty (blank_condition));
  g_assert_false (tocsin_template_is_empty (text));
  g_assert_true (tocsin_template_evaluate (null_condition, scope, NULL));
  g_assert_true (tocsin_template_evaluate (blank_condition, scope, NULL));
  g_assert_cmpstr (tocsin_template_get_source (text), ==, "Hi {{x}}");
  g_assert_cmpstr (tocsin_template_get_source (null_template), ==, "");
}

static void
test_cross_use (void)
{
  g_autoptr(TocsinTemplate) condition = tocsin_template_new_condition (
    "condition", "cpu_usage > 90 && 'high'", NULL);
  g_autoptr(TocsinTemplate) text = tocsin_template_new ("title", "{{missing}}", NULL);
  g_autoptr(TocsinTemplate) empty = tocsin_template_new ("title", "", NULL);
  g_autoptr(TocsinTemplateScope) scope = make_scope (NULL);
  g_autofree char *value = tocsin_template_render (condition, scope, NULL);

  /* a condition renders as its value, a text template passes when it renders something */
  g_assert_cmpstr (value, ==, "high");
  g_assert_false (tocsin_template_evaluate (text, scope, NULL));
  g_assert_true (tocsin_template_evaluate (empty, scope, NULL));
}

static void
test_ref_and_type (void)
{
  TocsinTemplate *template = tocsin_template_new ("title", "{{x}}", NULL);
  TocsinTemplate *copy;

  g_assert_true (G_TYPE_IS_BOXED (TOCSIN_TYPE_TEMPLATE));
  copy = g_boxed_copy (TOCSIN_TYPE_TEMPLATE, template);
  g_assert_true (copy == template);
  g_boxed_free (TOCSIN_TYPE_TEMPLATE, copy);
  g_assert_true (tocsin_template_ref (template) == template);
  tocsin_template_unref (template);
  tocsin_template_unref (template);
}

static void
test_clock_default_and_zone (void)
{
  g_autoptr(TocsinTemplate) template = tocsin_template_new ("t", "{{hour}} {{iso}}", NULL);
  g_autoptr(GTimeZone) paris = g_time_zone_new_identifier ("+02:00");
  g_autoptr(GDateTime) local = g_date_time_new (paris, 2026, 6, 1, 9, 30, 0);
  g_autoptr(TocsinTemplateScope) zoned = tocsin_template_scope_new (NULL, local);
  g_autoptr(TocsinTemplateScope) current = tocsin_template_scope_new (NULL, NULL);
  g_autofree char *zoned_text = tocsin_template_render (template, zoned, NULL);
  g_autofree char *current_text = tocsin_template_render (template, current, NULL);

  g_assert_nonnull (paris);
  /* the clock variables are always UTC */
  g_assert_cmpstr (zoned_text, ==, "7 2026-06-01T07:30:00.000Z");
  g_assert_true (g_str_has_suffix (current_text, "Z"));
  g_assert_true (g_regex_match_simple ("^[0-9]{1,2} 20[0-9]{2}-[0-9]{2}-[0-9]{2}T", current_text,
                                       0, 0));
}

typedef struct
{
  TocsinTemplate *template;
  TocsinTemplateScope *scope;
  const char *expected;
  gboolean ok;
} ThreadData;

static gpointer
render_many (gpointer user_data)
{
  ThreadData *data = user_data;

  data->ok = TRUE;
  for (int i = 0; i < 500; i++)
    {
      g_autofree char *text = tocsin_template_render (data->template, data->scope, NULL);
      if (g_strcmp0 (text, data->expected) != 0)
        data->ok = FALSE;
    }
  return NULL;
}

static void
test_threads (void)
{
  g_autoptr(TocsinTemplate) template = tocsin_template_new (
    "body", "{{server_name.toUpperCase()}} {{cpu_usage + 1}} {{user}} {{iso}} "
    "{{header['user-agent'].includes('Grafana') ? 'g' : 'x'}}", NULL);
  g_autoptr(TocsinTemplateScope) scope = make_scope (NULL);
  ThreadData data[8];
  GThread *threads[8];
  const char *expected = "PRODUCTION 96 {\"name\":\"Ada\",\"roles\":[\"admin\",\"dev\"],"
                         "\"address\":{\"city\":\"Paris\"}} 2026-11-23T16:40:00.123Z g";

  /* One compiled template and one scope, rendered from several threads at once. */
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      data[i] = (ThreadData) { template, scope, expected, FALSE };
      threads[i] = g_thread_new ("render", render_many, &data[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      g_thread_join (threads[i]);
      g_assert_true (data[i].ok);
    }
}

static void
test_deep_json_variable (void)
{
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);
  g_autoptr(JsonObject) vars = json_object_new ();
  g_autoptr(TocsinTemplate) template = tocsin_template_new ("body", "{{deep}}", NULL);
  g_autoptr(TocsinTemplateScope) scope = NULL;
  g_autofree char *text = NULL;
  JsonArray *array = json_array_new ();

  /* Nesting in the variables is the caller's; rendering must not follow it without bound. */
  json_node_take_array (root, array);
  for (int i = 0; i < 2000; i++)
    {
      JsonArray *inner = json_array_new ();
      json_array_add_array_element (array, inner);
      array = inner;
    }
  json_object_set_member (vars, "deep", json_node_ref (root));
  scope = tocsin_template_scope_new (vars, NULL);
  text = tocsin_template_render (template, scope, NULL);
  g_assert_true (g_str_has_prefix (text, "[[[[[["));
  g_assert_nonnull (strstr (text, "null"));
  g_assert_true (g_str_has_suffix (text, "]]]]]]"));
}

typedef struct
{
  const char *vars;
  const char *headers[4]; /* name, value, ... */
  const char *title, *body, *link, *condition;
  const char *expected_title, *expected_body, *expected_link;
  gboolean expected_pass;
} DocExample;

/* The examples of docs/templates.md, exactly as written there. */
static const DocExample doc_examples[] = {
  { "{'host': 'db1', 'cpu_usage': 97.5, 'threshold': 90,"
    " 'dashboard': 'https://grafana.example.com/d/cpu'}",
    { NULL },
    "{{cpu_usage >= 95 ? \"🔥\" : \"⚠️\"}} CPU {{cpu_usage}}% on {{host || \"unknown host\"}}",
    "Threshold {{threshold}}%, {{date}} {{time}} UTC",
    "{{dashboard}}",
    "cpu_usage > threshold && (hour >= 7 && hour < 22 || cpu_usage >= 95)",
    "🔥 CPU 97.5% on db1", "Threshold 90%, 2026-11-23 16:40:00 UTC",
    "https://grafana.example.com/d/cpu", TRUE },
  { "{'status': 'firing', 'commonLabels': {'severity': 'critical'}, 'alerts': ["
    " {'status': 'firing', 'labels': {'alertname': 'HighCPU', 'instance': 'db1:9100',"
    " 'severity': 'critical'}, 'annotations': {'summary': 'CPU above 90% for 5 minutes'},"
    " 'generatorURL': 'https://prometheus.example.com/graph?g0.expr=...'}]}",
    { NULL },
    "[{{status.toUpperCase()}}] {{alerts[0].labels.alertname}} on {{alerts[0].labels.instance}}",
    "{{alerts[0].annotations.summary}}{{alerts.length > 1 ? \" (+\" + (alerts.length - 1) + "
    "\" more)\" : \"\"}}",
    "{{alerts[0].generatorURL}}",
    "status == \"firing\" && commonLabels.severity != \"info\"",
    "[FIRING] HighCPU on db1:9100", "CPU above 90% for 5 minutes",
    "https://prometheus.example.com/graph?g0.expr=...", TRUE },
  { "{'status': 'resolved', 'commonLabels': {'severity': 'critical'}, 'alerts': ["
    " {'labels': {'alertname': 'HighCPU', 'instance': 'db1:9100'}, 'annotations': {},"
    " 'generatorURL': 'https://p.example.com/'}, {'labels': {}}]}",
    { NULL },
    "[{{status.toUpperCase()}}] {{alerts[0].labels.alertname}} on {{alerts[0].labels.instance}}",
    "{{alerts[0].annotations.summary}}{{alerts.length > 1 ? \" (+\" + (alerts.length - 1) + "
    "\" more)\" : \"\"}}",
    "{{alerts[0].generatorURL}}",
    "status == \"firing\" && commonLabels.severity != \"info\"",
    "[RESOLVED] HighCPU on db1:9100", " (+1 more)", "https://p.example.com/", FALSE },
  { "{'ref': 'refs/heads/main', 'compare': 'https://github.com/acme/site/compare/1a2b...3c4d',"
    " 'repository': {'full_name': 'acme/site'}, 'pusher': {'name': 'ada'},"
    " 'head_commit': {'message': 'Fix the footer\\n\\nLong description'}}",
    { "X-GitHub-Event", "push", NULL },
    "{{repository.full_name}}: push by {{pusher.name}}",
    "{{head_commit.message}}",
    "{{externalLink || compare}}",
    "ref == \"refs/heads/main\" && !header[\"x-github-event\"].includes(\"ping\")",
    "acme/site: push by ada", "Fix the footer\n\nLong description",
    "https://github.com/acme/site/compare/1a2b...3c4d", TRUE },
};

static void
test_doc_example (gconstpointer data)
{
  const DocExample *e = data;
  g_autoptr(JsonObject) vars = parse_vars (e->vars);
  g_autoptr(GDateTime) now = fixed_clock ();
  g_autoptr(TocsinTemplateScope) scope = tocsin_template_scope_new (vars, now);
  g_autoptr(GError) error = NULL;
  g_autoptr(TocsinTemplate) title = tocsin_template_new ("title", e->title, &error);
  g_autoptr(TocsinTemplate) body = tocsin_template_new ("body", e->body, &error);
  g_autoptr(TocsinTemplate) link = tocsin_template_new ("link", e->link, &error);
  g_autoptr(TocsinTemplate) condition = tocsin_template_new_condition ("condition",
                                                                       e->condition, &error);
  g_autofree char *title_text = NULL;
  g_autofree char *body_text = NULL;
  g_autofree char *link_text = NULL;

  g_assert_no_error (error);
  for (guint i = 0; e->headers[i] != NULL; i += 2)
    tocsin_template_scope_add_header (scope, e->headers[i], e->headers[i + 1]);
  title_text = tocsin_template_render (title, scope, NULL);
  body_text = tocsin_template_render (body, scope, NULL);
  link_text = tocsin_template_render (link, scope, NULL);
  g_assert_cmpstr (title_text, ==, e->expected_title);
  g_assert_cmpstr (body_text, ==, e->expected_body);
  g_assert_cmpstr (link_text, ==, e->expected_link);
  g_assert_cmpint (tocsin_template_evaluate (condition, scope, NULL), ==, e->expected_pass);
}

static void
test_huge_integer (void)
{
  /* Beyond 2^53, where a double (and JavaScript) would round; JSON above 2^63 is wrapped by
   * json-glib 1.6 itself before a template sees it. */
  g_autoptr(JsonObject) vars = parse_vars ("{'id': 1234567890123456789}");
  g_autoptr(TocsinTemplateScope) scope = tocsin_template_scope_new (vars, NULL);
  g_autoptr(TocsinTemplate) template = tocsin_template_new ("body", "{{id}} {{id + 0}}", NULL);
  g_autofree char *text = tocsin_template_render (template, scope, NULL);

  g_assert_cmpstr (text, ==, "1234567890123456789 1234567890123456800");
}

static void
add_table_tests (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (render_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/template/render/%s", render_cases[i].path);
      g_test_add_data_func (path, &render_cases[i], test_render_case);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (condition_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/template/condition/%s",
                                               condition_cases[i].path);
      g_test_add_data_func (path, &condition_cases[i], test_condition_case);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (error_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/template/error/%s", error_cases[i].path);
      g_test_add_data_func (path, &error_cases[i], test_error_case);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  add_table_tests ();
  for (gsize i = 0; i < G_N_ELEMENTS (doc_examples); i++)
    {
      static const char * const names[] = { "monitoring", "alertmanager-firing",
                                            "alertmanager-resolved", "github-push" };
      g_autofree char *path = g_strdup_printf ("/template/docs/%s", names[i]);
      g_test_add_data_func (path, &doc_examples[i], test_doc_example);
    }
  g_test_add_func ("/template/render/huge-integer", test_huge_integer);
  g_test_add_func ("/template/error/position-api", test_error_position);
  g_test_add_func ("/template/error/source-too-long", test_error_too_long);
  g_test_add_func ("/template/error/too-deep", test_error_depth);
  g_test_add_func ("/template/render/depth-at-limit", test_depth_at_limit);
  g_test_add_func ("/template/render/output-cap", test_output_cap);
  g_test_add_func ("/template/render/output-cap-concat-bomb", test_output_cap_concat_bomb);
  g_test_add_func ("/template/render/output-cap-json", test_output_cap_json);
  g_test_add_func ("/template/render/invalid-utf8-inputs", test_invalid_utf8_inputs);
  g_test_add_func ("/template/render/deep-json-variable", test_deep_json_variable);
  g_test_add_func ("/template/render/clock-default-and-zone", test_clock_default_and_zone);
  g_test_add_func ("/template/render/threads", test_threads);
  g_test_add_func ("/template/missing/render", test_missing);
  g_test_add_func ("/template/missing/condition", test_missing_condition);
  g_test_add_func ("/template/api/variables", test_variables);
  g_test_add_func ("/template/api/empty-and-source", test_empty_and_source);
  g_test_add_func ("/template/api/cross-use", test_cross_use);
  g_test_add_func ("/template/api/ref-and-type", test_ref_and_type);
  g_test_add_func ("/template/budget/chained-methods", test_budget_chained_methods);
  g_test_add_func ("/template/budget/condition", test_budget_condition);
  g_test_add_func ("/template/budget/array-and-objects", test_budget_array_and_objects);
  g_test_add_func ("/template/budget/normal-unaffected", test_budget_normal_unaffected);
  g_test_add_func ("/template/render/json-escapes-like-the-relay",
                   test_json_escapes_like_the_relay);

  return g_test_run ();
}
