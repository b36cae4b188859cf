/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * tocsin-relay-compat.c: ntfy's and Gotify's publish APIs, over a channel's trigger token.
 *
 * ntfy (docs.ntfy.sh/publish): a parameter is read from its headers first (Title, X-Title, t,
 * …; RFC 2047 encoded words decoded as ntfy does), then from the query under the same lower-case
 * names; the JSON form (POST /) overrides those with its members. The topic is the token, unless
 * an Authorization header (Bearer, or Basic with the token as password, or ntfy's ?auth=)
 * carries a token: then the topic is only a name. Gotify (gotify.net/api-docs): the token is in
 * ?token=, X-Gotify-Key or Authorization: Bearer, in that order, as Gotify reads them.
 *
 * What neither service's sender can do here is ignored without an error: icons, attachments,
 * e-mail, phone calls, delays (the message rings now), caching and Firebase flags.
 *
 * Nothing a sender sent is logged; the token is never a template variable, and the headers that
 * carry it (Authorization, X-Gotify-Key) are hidden from the templates' header[…].
 */
#define G_LOG_DOMAIN "tocsin-relay"

#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <glib/gi18n.h>

#include "tocsin-json.h"
#include "tocsin-message.h"
#include "tocsin-token.h"
#include "tocsin-relay-actions.h"
#include "tocsin-relay-body.h"
#include "tocsin-relay-compat.h"
#include "tocsin-relay-ingest.h"
#include "tocsin-relay-server.h"

/* ntfy's limits: topics of 1 to 64 [-_A-Za-z0-9], at most 3 actions. */
#define MAX_TOPIC    64
#define MAX_ACTIONS  3
/* ntfy's message when the body and every message parameter are empty. */
#define EMPTY_MESSAGE "triggered"

/* ntfy's error codes (server/errors.go), the ones this file can answer. */
enum
{
  NTFY_PRIORITY_INVALID = 40007,
  NTFY_TOPIC_INVALID = 40009,
  NTFY_NOT_UTF8 = 40011,
  NTFY_JSON_INVALID = 40017,
  NTFY_ACTIONS_INVALID = 40018,
};

G_DEFINE_QUARK (tocsin-relay-compat-error-quark, tocsin_relay_compat_error)

/* ---- Emoji ------------------------------------------------------------------------------ */

/* The common short codes of ntfy's emoji list (gemoji's aliases, docs.ntfy.sh/emojis), sorted
 * by name (strcmp) for bsearch. A tag elsewhere in that list stays a plain tag here. */
static const struct
{
  const char *name;
  const char *emoji;
} emoji_table[] = {
  { "+1", "👍" }, { "-1", "👎" }, { "100", "💯" }, { "1st_place_medal", "🥇" },
  { "airplane", "✈️" }, { "alarm_clock", "⏰" }, { "alien", "👽" }, { "ambulance", "🚑" },
  { "angry", "😠" }, { "ant", "🐜" }, { "arrow_down", "⬇️" }, { "arrow_left", "⬅️" },
  { "arrow_right", "➡️" }, { "arrow_up", "⬆️" }, { "arrows_counterclockwise", "🔄" },
  { "balloon", "🎈" }, { "ballot_box_with_check", "☑️" }, { "bangbang", "‼️" },
  { "bar_chart", "📊" }, { "battery", "🔋" }, { "bear", "🐻" }, { "beer", "🍺" },
  { "beers", "🍻" }, { "beetle", "🪲" }, { "bell", "🔔" }, { "bird", "🐦" },
  { "birthday", "🎂" }, { "black_circle", "⚫" }, { "black_flag", "🏴" },
  { "black_heart", "🖤" }, { "blossom", "🌼" }, { "blue_heart", "💙" }, { "blush", "😊" },
  { "book", "📖" }, { "books", "📚" }, { "boom", "💥" }, { "broken_heart", "💔" },
  { "bug", "🐛" }, { "bulb", "💡" }, { "butterfly", "🦋" }, { "cactus", "🌵" },
  { "cake", "🍰" }, { "calendar", "📆" }, { "calling", "📲" }, { "camera", "📷" },
  { "candle", "🕯️" }, { "car", "🚗" }, { "cat", "🐱" }, { "cd", "💿" },
  { "chart_with_downwards_trend", "📉" }, { "chart_with_upwards_trend", "📈" },
  { "checkered_flag", "🏁" }, { "cherry_blossom", "🌸" }, { "chicken", "🐔" },
  { "clap", "👏" }, { "clipboard", "📋" }, { "clock1", "🕐" },
  { "closed_lock_with_key", "🔐" }, { "cloud", "☁️" }, { "cloud_with_rain", "🌧️" },
  { "coffee", "☕" }, { "cold_sweat", "😰" }, { "comet", "☄️" }, { "computer", "💻" },
  { "confetti_ball", "🎊" }, { "confused", "😕" }, { "construction", "🚧" }, { "cool", "🆒" },
  { "credit_card", "💳" }, { "crescent_moon", "🌙" }, { "cry", "😢" }, { "date", "📅" },
  { "deciduous_tree", "🌳" }, { "desktop_computer", "🖥️" }, { "disappointed", "😞" },
  { "dizzy", "💫" }, { "dog", "🐶" }, { "dollar", "💵" }, { "dolphin", "🐬" }, { "door", "🚪" },
  { "dragon", "🐉" }, { "droplet", "💧" }, { "dvd", "📀" }, { "earth_africa", "🌍" },
  { "earth_americas", "🌎" }, { "earth_asia", "🌏" }, { "electric_plug", "🔌" },
  { "email", "📧" }, { "envelope", "✉️" }, { "euro", "💶" }, { "evergreen_tree", "🌲" },
  { "exclamation", "❗" }, { "exploding_head", "🤯" }, { "expressionless", "😑" },
  { "eye", "👁️" }, { "eyes", "👀" }, { "face_with_head_bandage", "🤕" },
  { "fallen_leaf", "🍂" }, { "fearful", "😨" }, { "file_folder", "📁" },
  { "film_strip", "🎞️" }, { "fire", "🔥" }, { "fire_engine", "🚒" }, { "fish", "🐟" },
  { "flags", "🎏" }, { "flashlight", "🔦" }, { "floppy_disk", "💾" },
  { "four_leaf_clover", "🍀" }, { "fox_face", "🦊" }, { "free", "🆓" }, { "frog", "🐸" },
  { "frowning_face", "☹️" }, { "full_moon", "🌕" }, { "gear", "⚙️" }, { "ghost", "👻" },
  { "gift", "🎁" }, { "globe_with_meridians", "🌐" }, { "green_circle", "🟢" },
  { "green_heart", "💚" }, { "green_square", "🟩" }, { "grey_exclamation", "❕" },
  { "grey_question", "❔" }, { "grimacing", "😬" }, { "grin", "😁" }, { "grinning", "😀" },
  { "hamburger", "🍔" }, { "hammer", "🔨" }, { "hammer_and_wrench", "🛠️" },
  { "headphones", "🎧" }, { "heart", "❤️" }, { "heart_eyes", "😍" },
  { "heavy_check_mark", "✔️" }, { "heavy_exclamation_mark", "❗" },
  { "heavy_multiplication_x", "✖️" }, { "herb", "🌿" }, { "hibiscus", "🌺" },
  { "hospital", "🏥" }, { "hotsprings", "♨️" }, { "hourglass", "⌛" },
  { "hourglass_flowing_sand", "⏳" }, { "house", "🏠" }, { "house_with_garden", "🏡" },
  { "inbox_tray", "📥" }, { "incoming_envelope", "📨" }, { "information_source", "ℹ️" },
  { "innocent", "😇" }, { "interrobang", "⁉️" }, { "iphone", "📱" }, { "joy", "😂" },
  { "key", "🔑" }, { "keyboard", "⌨️" }, { "lady_beetle", "🐞" },
  { "large_blue_circle", "🔵" }, { "leaves", "🍃" }, { "link", "🔗" }, { "lock", "🔒" },
  { "loudspeaker", "📢" }, { "mailbox", "📫" }, { "mailbox_with_mail", "📬" },
  { "mask", "😷" }, { "medal_sports", "🏅" }, { "mega", "📣" }, { "memo", "📝" },
  { "microphone", "🎤" }, { "minidisc", "💽" }, { "money_with_wings", "💸" },
  { "moneybag", "💰" }, { "monkey_face", "🐵" }, { "monocle_face", "🧐" }, { "moon", "🌔" },
  { "mouse", "🐭" }, { "movie_camera", "🎥" }, { "muscle", "💪" }, { "mushroom", "🍄" },
  { "musical_note", "🎵" }, { "nauseated_face", "🤢" },
  { "negative_squared_cross_mark", "❎" }, { "nerd_face", "🤓" }, { "neutral_face", "😐" },
  { "new", "🆕" }, { "new_moon", "🌑" }, { "newspaper", "📰" }, { "no_bell", "🔕" },
  { "no_entry", "⛔" }, { "no_entry_sign", "🚫" }, { "notes", "🎶" }, { "nut_and_bolt", "🔩" },
  { "ocean", "🌊" }, { "octopus", "🐙" }, { "office", "🏢" }, { "ok", "🆗" },
  { "ok_hand", "👌" }, { "old_key", "🗝️" }, { "open_file_folder", "📂" },
  { "orange_circle", "🟠" }, { "orange_heart", "🧡" }, { "outbox_tray", "📤" },
  { "package", "📦" }, { "palm_tree", "🌴" }, { "panda_face", "🐼" }, { "paperclip", "📎" },
  { "partly_sunny", "⛅" }, { "partying_face", "🥳" }, { "pencil", "📝" },
  { "pencil2", "✏️" }, { "penguin", "🐧" }, { "phone", "☎️" }, { "pig", "🐷" },
  { "pill", "💊" }, { "pizza", "🍕" }, { "point_down", "👇" }, { "point_left", "👈" },
  { "point_right", "👉" }, { "point_up", "☝️" }, { "police_car", "🚓" }, { "pray", "🙏" },
  { "purple_circle", "🟣" }, { "purple_heart", "💜" }, { "pushpin", "📌" },
  { "question", "❓" }, { "rabbit", "🐰" }, { "radio", "📻" }, { "rage", "😡" },
  { "rainbow", "🌈" }, { "raised_hand", "✋" }, { "recycle", "♻️" }, { "red_circle", "🔴" },
  { "red_square", "🟥" }, { "relieved", "😌" }, { "repeat", "🔁" }, { "robot", "🤖" },
  { "rocket", "🚀" }, { "rofl", "🤣" }, { "roll_eyes", "🙄" }, { "rose", "🌹" },
  { "rotating_light", "🚨" }, { "satellite", "📡" }, { "scream", "😱" }, { "seedling", "🌱" },
  { "shield", "🛡️" }, { "ship", "🚢" }, { "shopping_cart", "🛒" }, { "skull", "💀" },
  { "skull_and_crossbones", "☠️" }, { "sleeping", "😴" }, { "sleepy", "😪" },
  { "slightly_frowning_face", "🙁" }, { "slightly_smiling_face", "🙂" }, { "smile", "😄" },
  { "smiley", "😃" }, { "snail", "🐌" }, { "snake", "🐍" }, { "snowflake", "❄️" },
  { "snowman", "⛄" }, { "sob", "😭" }, { "sos", "🆘" }, { "sparkles", "✨" },
  { "speech_balloon", "💬" }, { "star", "⭐" }, { "star2", "🌟" }, { "stop_sign", "🛑" },
  { "stopwatch", "⏱️" }, { "sunflower", "🌻" }, { "sunglasses", "😎" }, { "sunny", "☀️" },
  { "sweat", "😓" }, { "sweat_drops", "💦" }, { "syringe", "💉" }, { "tada", "🎉" },
  { "thermometer", "🌡️" }, { "thinking", "🤔" }, { "thought_balloon", "💭" },
  { "thumbsdown", "👎" }, { "thumbsup", "👍" }, { "timer_clock", "⏲️" }, { "toolbox", "🧰" },
  { "traffic_light", "🚥" }, { "triangular_flag_on_post", "🚩" }, { "triumph", "😤" },
  { "trophy", "🏆" }, { "truck", "🚚" }, { "tulip", "🌷" }, { "turtle", "🐢" }, { "tv", "📺" },
  { "umbrella", "☔" }, { "unamused", "😒" }, { "unlock", "🔓" }, { "up", "🆙" },
  { "v", "✌️" }, { "vertical_traffic_light", "🚦" }, { "video_camera", "📹" },
  { "warning", "⚠️" }, { "watch", "⌚" }, { "wave", "👋" }, { "whale", "🐳" },
  { "white_check_mark", "✅" }, { "white_circle", "⚪" }, { "white_flag", "🏳️" },
  { "white_heart", "🤍" }, { "wink", "😉" }, { "worried", "😟" }, { "wrench", "🔧" },
  { "x", "❌" }, { "yellow_circle", "🟡" }, { "yellow_heart", "💛" },
  { "yellow_square", "🟨" }, { "zap", "⚡" },
};

static int
emoji_compare (const void *key,
               const void *entry)
{
  return strcmp (key, *(const char * const *) entry);
}

const char *
tocsin_relay_compat_emoji (const char *tag)
{
  const char * const *found;

  if (tag == NULL)
    return NULL;
  /* The table's rows start with their name: a row pointer is a pointer to that pointer. */
  found = bsearch (tag, emoji_table, G_N_ELEMENTS (emoji_table), sizeof emoji_table[0],
                   emoji_compare);
  return found ? found[1] : NULL;
}

/* ---- Routes ----------------------------------------------------------------------------- */

static gboolean
is_topic (const char *s,
          gsize       length)
{
  if (length == 0 || length > MAX_TOPIC)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isalnum (s[i]) && s[i] != '-' && s[i] != '_')
      return FALSE;
  return TRUE;
}

TocsinRelayCompatRoute
tocsin_relay_compat_match (const char  *method,
                           const char  *path,
                           char       **topic)
{
  gboolean get = g_str_equal (method, "GET");
  gboolean post = g_str_equal (method, "POST") || g_str_equal (method, "PUT");
  const char *slash;

  if (topic != NULL)
    *topic = NULL;
  if (path[0] != '/')
    return TOCSIN_RELAY_COMPAT_NONE;
  if (g_str_equal (path, "/message"))
    return g_str_equal (method, "POST") ? TOCSIN_RELAY_COMPAT_GOTIFY : TOCSIN_RELAY_COMPAT_NONE;
  if (g_str_equal (path, "/"))
    return post ? TOCSIN_RELAY_COMPAT_NTFY_JSON : TOCSIN_RELAY_COMPAT_NONE;

  slash = strchr (path + 1, '/');
  if (slash == NULL)
    {
      if (!post || !is_topic (path + 1, strlen (path + 1)))
        return TOCSIN_RELAY_COMPAT_NONE;
      if (topic != NULL)
        *topic = g_strdup (path + 1);
      return TOCSIN_RELAY_COMPAT_NTFY_TOPIC;
    }
  if ((get || post) && is_topic (path + 1, slash - path - 1) &&
      (g_str_equal (slash, "/publish") || g_str_equal (slash, "/send") ||
       g_str_equal (slash, "/trigger")))
    {
      if (topic != NULL)
        *topic = g_strndup (path + 1, slash - path - 1);
      return TOCSIN_RELAY_COMPAT_NTFY_PUBLISH;
    }
  return TOCSIN_RELAY_COMPAT_NONE;
}

/* ---- Reading parameters ------------------------------------------------------------------ */

void
tocsin_relay_compat_request_free (TocsinRelayCompatRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->token);
  g_free (request->topic);
  g_free (request->title);
  g_free (request->message);
  g_clear_pointer (&request->tags, json_array_unref);
  g_free (request->click);
  g_clear_pointer (&request->actions, json_array_unref);
  g_clear_pointer (&request->extras, json_object_unref);
  g_free (request->emoji);
  g_clear_pointer (&request->vars, json_object_unref);
  g_free (request->shown_title);
  g_free (request->shown_body);
  g_clear_pointer (&request->message_actions, g_ptr_array_unref);
  g_free (request);
}

static TocsinRelayCompatRequest *
request_new (gboolean gotify)
{
  TocsinRelayCompatRequest *request = g_new0 (TocsinRelayCompatRequest, 1);

  request->gotify = gotify;
  request->title = g_strdup ("");
  request->message = g_strdup ("");
  request->click = g_strdup ("");
  request->tags = json_array_new ();
  request->actions = json_array_new ();
  return request;
}

static void
set_string (char       **field,
            const char  *value)
{
  g_free (*field);
  *field = g_strdup (value);
}

/* One RFC 2047 encoded word's text in UTF-8, ISO-8859-1 or US-ASCII (what Go's WordDecoder, and
 * so ntfy, decodes); NULL when it is not one. */
static char *
decode_word (const char *charset,
             char        encoding,
             const char *text,
             gsize       length)
{
  g_autoptr(GString) bytes = g_string_new (NULL);
  gboolean latin1 = g_ascii_strcasecmp (charset, "iso-8859-1") == 0;

  if (!latin1 && g_ascii_strcasecmp (charset, "utf-8") != 0 &&
      g_ascii_strcasecmp (charset, "us-ascii") != 0)
    return NULL;
  if (encoding == 'b' || encoding == 'B')
    {
      g_autofree char *copy = g_strndup (text, length);
      g_autofree guchar *decoded = NULL;
      gsize decoded_length = 0;

      for (gsize i = 0; i < length; i++)
        if (!g_ascii_isalnum (text[i]) && text[i] != '+' && text[i] != '/' && text[i] != '=')
          return NULL;
      decoded = g_base64_decode (copy, &decoded_length);
      g_string_append_len (bytes, (const char *) decoded, decoded_length);
    }
  else if (encoding == 'q' || encoding == 'Q')
    {
      for (gsize i = 0; i < length; i++)
        {
          if (text[i] == '_')
            g_string_append_c (bytes, ' ');
          else if (text[i] == '=' && i + 2 < length && g_ascii_isxdigit (text[i + 1]) &&
                   g_ascii_isxdigit (text[i + 2]))
            {
              g_string_append_c (bytes, (char) (g_ascii_xdigit_value (text[i + 1]) * 16 +
                                                g_ascii_xdigit_value (text[i + 2])));
              i += 2;
            }
          else if (text[i] == '=')
            return NULL;
          else
            g_string_append_c (bytes, text[i]);
        }
    }
  else
    return NULL;

  if (memchr (bytes->str, '\0', bytes->len) != NULL)
    return NULL;
  if (latin1)
    return g_convert (bytes->str, bytes->len, "UTF-8", "ISO-8859-1", NULL, NULL, NULL);
  if (!g_utf8_validate_len (bytes->str, bytes->len, NULL))
    return NULL;
  return g_string_free (g_steal_pointer (&bytes), FALSE);
}

/* A header value as text: encoded words (=?utf-8?B?…?=) decoded, whitespace between two of
 * them dropped (RFC 2047 §6.2); bytes that are not UTF-8 read as ISO-8859-1, as HTTP/1.1 header
 * values historically are. */
static char *
header_text (const char *value)
{
  g_autoptr(GString) out = g_string_new (NULL);
  const char *p = value;
  gssize word_end = -1;   /* where the last encoded word ended in @out, or -1 */

  if (!g_utf8_validate (value, -1, NULL))
    return g_convert (value, -1, "UTF-8", "ISO-8859-1", NULL, NULL, NULL);

  while (*p)
    {
      const char *q, *end;

      if (p[0] == '=' && p[1] == '?' &&
          (q = strchr (p + 2, '?')) != NULL && q - p - 2 > 0 && q - p - 2 < 40 &&
          q[1] != '\0' && q[2] == '?' &&
          (end = strstr (q + 3, "?=")) != NULL)
        {
          g_autofree char *charset = g_strndup (p + 2, q - p - 2);
          g_autofree char *word = decode_word (charset, q[1], q + 3, end - q - 3);

          if (word != NULL)
            {
              /* Only white space since the last encoded word: it goes. */
              if (word_end >= 0)
                g_string_truncate (out, word_end);
              g_string_append (out, word);
              word_end = out->len;
              p = end + 2;
              continue;
            }
        }
      if (!g_ascii_isspace (*p))
        word_end = -1;
      g_string_append_c (out, *p);
      p++;
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

typedef struct
{
  SoupMessageHeaders *headers;
  JsonObject         *query;     /* the decoded query string */
} Params;

/* ntfy's "Priority: u=3, i" guard: RFC 9218's Priority header (proxies add it) is not ntfy's. */
static gboolean
is_rfc9218_priority (const char *value)
{
  if (value[0] != 'u' || value[1] != '=' || !g_ascii_isdigit (value[2]))
    return FALSE;
  if (value[3] == '\0')
    return TRUE;
  if (value[3] != ',')
    return FALSE;
  value += 4;
  while (g_ascii_isspace (*value))
    value++;
  return (*value == 'i' || g_ascii_isdigit (*value)) && value[1] == '\0';
}

/* ntfy's readParam(): the first non-empty header among @names (trimmed, encoded words decoded),
 * else the first non-empty query parameter among them. "" when none. */
static char *
read_param (const Params       *params,
            const char * const *names)
{
  for (guint i = 0; names[i]; i++)
    {
      const char *value = params->headers ?
                          soup_message_headers_get_one (params->headers, names[i]) : NULL;
      g_autofree char *text = NULL;

      if (value == NULL)
        continue;
      text = header_text (value);
      if (text == NULL)
        continue;
      g_strstrip (text);
      if (g_ascii_strcasecmp (names[i], "priority") == 0 && is_rfc9218_priority (text))
        continue;
      if (*text != '\0')
        return g_steal_pointer (&text);
    }
  for (guint i = 0; names[i]; i++)
    {
      const char *value = tocsin_json_get_string (params->query, names[i], NULL);

      if (value != NULL)
        {
          g_autofree char *text = g_strstrip (g_strdup (value));

          if (*text != '\0')
            return g_steal_pointer (&text);
        }
    }
  return g_strdup ("");
}

static gboolean
is_true (const char *value)
{
  return g_ascii_strcasecmp (value, "1") == 0 || g_ascii_strcasecmp (value, "yes") == 0 ||
         g_ascii_strcasecmp (value, "true") == 0;
}

static gboolean
parse_ntfy_priority (const char  *text,
                     gint64      *priority,
                     GError     **error)
{
  static const char * const names[] = { "min", "low", "default", "high", "max" };

  *priority = 0;
  if (*text == '\0')
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if ((text[0] == '1' + (char) i && text[1] == '\0') || g_ascii_strcasecmp (text, names[i]) == 0)
      {
        *priority = i + 1;
        return TRUE;
      }
  if (g_ascii_strcasecmp (text, "urgent") == 0)
    {
      *priority = 5;
      return TRUE;
    }
  g_set_error (error, TOCSIN_RELAY_COMPAT_ERROR, NTFY_PRIORITY_INVALID,
               _("invalid priority parameter: give 1 to 5, or min, low, default, high, urgent or "
                 "max"));
  return FALSE;
}

static void
add_tags (JsonArray  *tags,
          const char *list)
{
  g_auto(GStrv) parts = g_strsplit (list, ",", -1);

  for (guint i = 0; parts[i]; i++)
    {
      g_strstrip (parts[i]);
      if (*parts[i] != '\0')
        json_array_add_string_element (tags, parts[i]);
    }
}

/* ---- ntfy's actions (docs.ntfy.sh/publish/#action-buttons) ------------------------------- */

static gboolean
actions_error (GError     **error,
               const char  *reason)
{
  /* @reason may quote the sender's header: said back as valid UTF-8 whatever it held. */
  g_autofree char *shown = g_utf8_make_valid (reason, -1);

  g_set_error (error, TOCSIN_RELAY_COMPAT_ERROR, NTFY_ACTIONS_INVALID,
               _("invalid request: actions invalid; %s"), shown);
  return FALSE;
}

/* Sets @key (or, without one, the field at @section: action, label, url) of @action. */
static gboolean
action_set (JsonObject  *action,
            guint        section,
            const char  *key,
            const char  *value,
            GError     **error)
{
  static const char * const plain[] = { "action", "label", "url", "method", "body", "intent",
                                        NULL };
  g_autofree char *lower = NULL;

  if (*key == '\0')
    {
      const char *verb = tocsin_json_get_string (action, "action", "");

      if (section == 0)
        key = "action";
      else if (section == 1)
        key = "label";
      else if (section == 2 && (g_ascii_strcasecmp (verb, "view") == 0 ||
                                g_ascii_strcasecmp (verb, "http") == 0))
        key = "url";
      else
        {
          g_autofree char *reason = g_strdup_printf (_("term “%s” unknown"), value);

          return actions_error (error, reason);
        }
    }
  if (g_str_has_prefix (key, "headers.") || g_str_has_prefix (key, "extras."))
    {
      gboolean headers = key[0] == 'h';
      const char *group = headers ? "headers" : "extras";
      JsonNode *member = json_object_get_member (action, group);
      JsonObject *object = member && JSON_NODE_HOLDS_OBJECT (member)
                           ? json_node_get_object (member) : NULL;

      if (object == NULL)
        {
          object = json_object_new ();
          json_object_set_object_member (action, group, object);
        }
      json_object_set_string_member (object, key + (headers ? 8 : 7), value);
      return TRUE;
    }
  lower = g_ascii_strdown (key, -1);
  if (g_str_equal (lower, "clear"))
    {
      if (!is_true (value) && g_ascii_strcasecmp (value, "0") != 0 &&
          g_ascii_strcasecmp (value, "no") != 0 && g_ascii_strcasecmp (value, "false") != 0)
        return actions_error (error, _("clear takes true, yes, 1, false, no or 0"));
      json_object_set_boolean_member (action, "clear", is_true (value));
      return TRUE;
    }
  if (g_strv_contains (plain, lower))
    {
      json_object_set_string_member (action, lower, value);
      return TRUE;
    }
  {
    g_autofree char *reason = g_strdup_printf (_("key “%s” unknown"), key);

    return actions_error (error, reason);
  }
}

/* `view, Open, https://…, clear=true; http, …`: actions separated by `;`, fields by `,`; a value
 * may be quoted ("…" or '…', with \ escaping the quote); the first three fields may leave out
 * their key (action, label, url). */
static JsonArray *
parse_actions_simple (const char  *s,
                      GError     **error)
{
  g_autoptr(JsonArray) actions = json_array_new ();
  const char *p = s;

  while (*p)
    {
      g_autoptr(JsonObject) action = json_object_new ();
      guint section = 0;
      gboolean last = FALSE;

      while (!last)
        {
          g_autofree char *key = NULL;
          g_autoptr(GString) value = g_string_new (NULL);
          const char *k;

          while (g_ascii_isspace (*p))
            p++;
          /* key = [-.\w]+ followed by '=' */
          for (k = p; g_ascii_isalnum (*k) || *k == '-' || *k == '.' || *k == '_'; k++)
            ;
          if (k > p)
            {
              const char *eq = k;

              while (g_ascii_isspace (*eq))
                eq++;
              if (*eq == '=')
                {
                  key = g_strndup (p, k - p);
                  p = eq + 1;
                  while (g_ascii_isspace (*p))
                    p++;
                }
            }
          if (key == NULL)
            key = g_strdup ("");

          if (*p == '"' || *p == '\'')
            {
              char quote = *p++;

              while (*p && *p != quote)
                {
                  if (*p == '\\' && p[1] == quote)
                    p++;
                  g_string_append_c (value, *p++);
                }
              if (*p != quote)
                {
                  actions_error (error, _("unexpected end of input, quote not closed"));
                  return NULL;
                }
              p++;
              while (g_ascii_isspace (*p))
                p++;
              if (*p != '\0' && *p != ',' && *p != ';')
                {
                  actions_error (error, _("unexpected character after a quoted value"));
                  return NULL;
                }
            }
          else
            {
              while (*p && *p != ',' && *p != ';')
                g_string_append_c (value, *p++);
              g_strstrip (value->str);
              g_string_set_size (value, strlen (value->str));
            }
          if (*p == ',')
            p++;
          else
            {
              if (*p == ';')
                p++;
              last = TRUE;
            }
          if (!action_set (action, section, key, value->str, error))
            return NULL;
          section++;
        }
      json_array_add_object_element (actions, g_steal_pointer (&action));
      while (g_ascii_isspace (*p))
        p++;
    }
  return g_steal_pointer (&actions);
}

/* ntfy's checks of every action, however given. */
static gboolean
check_actions (JsonArray  *actions,
               GError    **error)
{
  if (json_array_get_length (actions) > MAX_ACTIONS)
    return actions_error (error, _("only 3 actions allowed"));
  for (guint i = 0; i < json_array_get_length (actions); i++)
    {
      JsonNode *node = json_array_get_element (actions, i);
      JsonObject *action;
      const char *verb;
      g_autofree char *lower = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return actions_error (error, _("each action is an object"));
      action = json_node_get_object (node);
      verb = tocsin_json_get_string (action, "action", "");
      lower = g_ascii_strdown (verb, -1);
      if (!g_str_equal (lower, "view") && !g_str_equal (lower, "broadcast") &&
          !g_str_equal (lower, "http"))
        return actions_error (error, _("“action” is view, broadcast or http"));
      json_object_set_string_member (action, "action", lower);
      if (*tocsin_json_get_string (action, "label", "") == '\0')
        return actions_error (error, _("parameter “label” is required"));
      if (!g_str_equal (lower, "broadcast") && *tocsin_json_get_string (action, "url", "") == '\0')
        return actions_error (error, _("parameter “url” is required for view and http actions"));
    }
  return TRUE;
}

static JsonArray *
parse_actions (const char  *text,
               GError     **error)
{
  g_autoptr(JsonArray) actions = NULL;

  if (text[0] == '[')
    {
      g_autoptr(GError) local = NULL;
      /* One level less than a body: in the variables the array sits one level down, as a
       * JSON body's members do. */
      g_autoptr(JsonNode) root = tocsin_json_parse (text, strlen (text), strlen (text),
                                                    TOCSIN_JSON_DEFAULT_MAX_DEPTH - 1, &local);

      if (root == NULL || !JSON_NODE_HOLDS_ARRAY (root))
        {
          actions_error (error, local ? local->message : _("not a JSON array"));
          return NULL;
        }
      actions = json_array_ref (json_node_get_array (root));
    }
  else
    actions = parse_actions_simple (text, error);
  if (actions == NULL || !check_actions (actions, error))
    return NULL;
  return g_steal_pointer (&actions);
}

/* ---- The token ------------------------------------------------------------------------- */

/* The token an Authorization value carries: "Bearer TOKEN", or "Basic" with TOKEN as password
 * (or as user name, with no password). NULL when it carries no well-formed token. */
static char *
token_from_authorization (const char *value)
{
  g_autofree char *token = NULL;

  if (value == NULL)
    return NULL;
  while (g_ascii_isspace (*value))
    value++;
  if (g_ascii_strncasecmp (value, "Bearer ", 7) == 0)
    token = g_strstrip (g_strdup (value + 7));
  else if (g_ascii_strncasecmp (value, "Basic ", 6) == 0)
    {
      g_autofree char *encoded = g_strstrip (g_strdup (value + 6));
      g_autofree guchar *decoded = NULL;
      g_autofree char *text = NULL;
      gsize length = 0;
      const char *colon;

      for (const char *p = encoded; *p; p++)
        if (!g_ascii_isalnum (*p) && *p != '+' && *p != '/' && *p != '=')
          return NULL;
      decoded = g_base64_decode (encoded, &length);
      text = g_strndup ((const char *) decoded, length);
      colon = strchr (text, ':');
      if (colon == NULL)
        return NULL;
      token = colon[1] != '\0' ? g_strdup (colon + 1) : g_strndup (text, colon - text);
    }
  if (token == NULL || !tocsin_token_is_wellformed (token))
    return NULL;
  return g_steal_pointer (&token);
}

/* ntfy's ?auth=: the Authorization header's value in unpadded base64url. */
static char *
token_from_auth_param (const char *param)
{
  g_autoptr(GString) standard = g_string_new (NULL);
  g_autofree guchar *decoded = NULL;
  g_autofree char *value = NULL;
  gsize length = 0;

  for (const char *p = param; *p; p++)
    {
      if (!g_ascii_isalnum (*p) && !strchr ("-_+/=", *p))
        return NULL;
      g_string_append_c (standard, *p == '-' ? '+' : *p == '_' ? '/' : *p);
    }
  while (standard->len % 4 != 0)
    g_string_append_c (standard, '=');
  decoded = g_base64_decode (standard->str, &length);
  value = g_strndup ((const char *) decoded, length);
  return token_from_authorization (value);
}

/* ---- What the request becomes ------------------------------------------------------------ */

static char *
join_emoji (JsonArray *tags)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; i < json_array_get_length (tags); i++)
    {
      const char *emoji = tocsin_relay_compat_emoji (json_array_get_string_element (tags, i));

      if (emoji == NULL)
        continue;
      if (out->len > 0)
        g_string_append_c (out, ' ');
      g_string_append (out, emoji);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* The variables, and what stands in for templates the channel does not have: ntfy's web app
 * puts the tags' emoji before the title, or before the message when there is no title. */
static void
finish (TocsinRelayCompatRequest *request)
{
  JsonObject *vars = json_object_new ();
  gboolean emoji = FALSE;

  request->emoji = join_emoji (request->tags);
  emoji = *request->emoji != '\0';

  json_object_set_string_member (vars, "title", request->title);
  json_object_set_string_member (vars, "message", request->message);
  json_object_set_int_member (vars, "priority", request->priority);
  json_object_set_array_member (vars, "tags", json_array_ref (request->tags));
  json_object_set_string_member (vars, "click", request->click);
  json_object_set_array_member (vars, "actions", json_array_ref (request->actions));
  json_object_set_boolean_member (vars, "markdown", request->markdown);
  json_object_set_string_member (vars, "emoji", request->emoji);
  if (request->extras != NULL)
    json_object_set_object_member (vars, "extras", json_object_ref (request->extras));
  /* The topic is only a name when the token came another way; else it is the secret. */
  if (request->topic != NULL && g_strcmp0 (request->topic, request->token) != 0)
    json_object_set_string_member (vars, "topic", request->topic);
  request->vars = vars;

  if (*request->title != '\0')
    {
      request->shown_title = emoji ? g_strdup_printf ("%s %s", request->emoji, request->title)
                                   : g_strdup (request->title);
      request->shown_body = g_strdup (request->message);
    }
  else
    request->shown_body = emoji ? g_strdup_printf ("%s %s", request->emoji, request->message)
                                : g_strdup (request->message);

  request->hints.title = request->shown_title;
  request->hints.body = request->shown_body;
  request->hints.link = *request->click != '\0' ? request->click : NULL;
  request->hints.markdown = request->markdown;
  /* ntfy's view and http actions are buttons on the message too (broadcast is Android's). */
  request->message_actions = tocsin_relay_actions_from_ntfy (request->actions);
  request->hints.actions = request->message_actions;
  /* ntfy's high and urgent (4, 5); Gotify's 8 to 10, which its Android app makes pop up. */
  if (request->priority >= (request->gotify ? 8 : 4))
    request->hints.type = TOCSIN_MESSAGE_TYPE_TIME_SENSITIVE;
}

static gboolean
json_error (GError     **error,
            gint         code,
            const char  *member,
            const char  *what)
{
  g_set_error (error, TOCSIN_RELAY_COMPAT_ERROR, code,
               _("invalid request: “%s” must be %s"), member, what);
  return FALSE;
}

/* The string member @name of @object into *@field when present and not empty. */
static gboolean
json_take_string (JsonObject  *object,
                  const char  *name,
                  char       **field,
                  gint         code,
                  GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return json_error (error, code, name, _("a string"));
  if (*json_node_get_string (node) != '\0')
    set_string (field, json_node_get_string (node));
  return TRUE;
}

static gboolean
json_take_int (JsonObject  *object,
               const char  *name,
               gint64      *value,
               gboolean    *present,
               gint         code,
               GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);

  *present = FALSE;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return json_error (error, code, name, _("a whole number"));
  *value = json_node_get_int (node);
  *present = TRUE;
  return TRUE;
}

/* The JSON form's tags: an array of strings. */
static gboolean
json_take_tags (JsonObject  *json,
                JsonArray   *tags,
                GError     **error)
{
  JsonNode *node = json_object_get_member (json, "tags");
  JsonArray *array;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return json_error (error, NTFY_JSON_INVALID, "tags", _("an array of strings"));
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *tag = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (tag) || json_node_get_value_type (tag) != G_TYPE_STRING)
        return json_error (error, NTFY_JSON_INVALID, "tags", _("an array of strings"));
    }
  if (json_array_get_length (array) == 0)
    return TRUE;
  while (json_array_get_length (tags) > 0)
    json_array_remove_element (tags, 0);
  for (guint i = 0; i < json_array_get_length (array); i++)
    add_tags (tags, json_array_get_string_element (array, i));
  return TRUE;
}

/* The JSON form's members override the headers and the query, as in ntfy. */
static gboolean
read_ntfy_json (JsonObject                *json,
                TocsinRelayCompatRequest  *request,
                GError                   **error)
{
  JsonNode *node;
  gint64 priority = 0;
  gboolean present = FALSE;

  if (!json_take_string (json, "title", &request->title, NTFY_JSON_INVALID, error) ||
      !json_take_string (json, "message", &request->message, NTFY_JSON_INVALID, error) ||
      !json_take_string (json, "click", &request->click, NTFY_JSON_INVALID, error) ||
      !json_take_int (json, "priority", &priority, &present, NTFY_JSON_INVALID, error) ||
      !json_take_tags (json, request->tags, error))
    return FALSE;
  if (present && priority != 0)
    {
      if (priority < 1 || priority > 5)
        {
          g_set_error (error, TOCSIN_RELAY_COMPAT_ERROR, NTFY_PRIORITY_INVALID,
                       _("invalid priority parameter: give 1 to 5, or min, low, default, high, "
                         "urgent or max"));
          return FALSE;
        }
      request->priority = priority;
    }
  node = json_object_get_member (json, "actions");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!JSON_NODE_HOLDS_ARRAY (node))
        return json_error (error, NTFY_JSON_INVALID, "actions", _("an array of objects"));
      if (json_array_get_length (json_node_get_array (node)) > 0)
        {
          json_array_unref (request->actions);
          request->actions = json_array_ref (json_node_get_array (node));
          if (!check_actions (request->actions, error))
            return FALSE;
        }
    }
  node = json_object_get_member (json, "markdown");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
        return json_error (error, NTFY_JSON_INVALID, "markdown", _("true or false"));
      if (json_node_get_boolean (node))
        request->markdown = TRUE;
    }
  return TRUE;
}

static const char * const title_names[] = { "x-title", "title", "t", NULL };
static const char * const message_names[] = { "x-message", "message", "m", NULL };
static const char * const priority_names[] = { "x-priority", "priority", "prio", "p", NULL };
static const char * const tags_names[] = { "x-tags", "tags", "tag", "ta", NULL };
static const char * const click_names[] = { "x-click", "click", NULL };
static const char * const actions_names[] = { "x-actions", "actions", "action", NULL };
static const char * const markdown_names[] = { "x-markdown", "markdown", "md", NULL };
static const char * const content_type_names[] = { "content-type", "content_type", NULL };

/* Headers, then the query (ntfy's readParam() for each parameter). */
static gboolean
read_ntfy_params (const Params              *params,
                  TocsinRelayCompatRequest  *request,
                  GError                   **error)
{
  g_autofree char *message = read_param (params, message_names);
  g_autofree char *priority = read_param (params, priority_names);
  g_autofree char *tags = read_param (params, tags_names);
  g_autofree char *actions = read_param (params, actions_names);
  g_autofree char *markdown = read_param (params, markdown_names);
  g_autofree char *content_type = read_param (params, content_type_names);

  g_free (request->title);
  request->title = read_param (params, title_names);
  g_free (request->click);
  request->click = read_param (params, click_names);
  if (*message != '\0')
    {
      /* ntfy turns a literal \n in the parameter into a line break. */
      g_auto(GStrv) lines = g_strsplit (message, "\\n", -1);

      g_free (request->message);
      request->message = g_strjoinv ("\n", lines);
    }
  if (!parse_ntfy_priority (priority, &request->priority, error))
    return FALSE;
  add_tags (request->tags, tags);
  if (*actions != '\0')
    {
      JsonArray *parsed = parse_actions (actions, error);

      if (parsed == NULL)
        return FALSE;
      json_array_unref (request->actions);
      request->actions = parsed;
    }
  request->markdown = is_true (markdown) ||
                      g_ascii_strncasecmp (content_type, "text/markdown", 13) == 0;
  return TRUE;
}

TocsinRelayCompatRequest *
tocsin_relay_compat_read_ntfy (const char          *path_topic,
                               SoupMessageHeaders  *headers,
                               const char          *query,
                               GBytes              *body,
                               gsize                max_body,
                               GError             **error)
{
  g_autoptr(TocsinRelayCompatRequest) request = request_new (FALSE);
  g_autoptr(JsonObject) query_vars = json_object_new ();
  g_autoptr(JsonObject) json = NULL;
  g_autoptr(GError) local = NULL;
  g_autofree char *auth = NULL;
  Params params = { headers, query_vars };
  const char *data = NULL, *auth_param;
  gsize length = 0;

  if (body != NULL)
    data = g_bytes_get_data (body, &length);
  if (query != NULL && *query != '\0' &&
      !tocsin_relay_body_add_form_pairs (query_vars, query, -1, _("query string"), &local))
    {
      g_set_error_literal (error, TOCSIN_RELAY_COMPAT_ERROR, NTFY_NOT_UTF8, local->message);
      return NULL;
    }

  /* The JSON form: POST / with {"topic": …}. */
  if (path_topic == NULL)
    {
      const char *topic;

      json = tocsin_json_parse_object (data ? data : "", length, max_body,
                                       TOCSIN_JSON_DEFAULT_MAX_DEPTH, &local);
      if (json == NULL)
        {
          g_set_error (error, TOCSIN_RELAY_COMPAT_ERROR, NTFY_JSON_INVALID,
                       _("invalid request: request body must be message JSON (%s)"),
                       local->message);
          return NULL;
        }
      topic = tocsin_json_get_string (json, "topic", "");
      if (!is_topic (topic, strlen (topic)))
        {
          g_set_error_literal (error, TOCSIN_RELAY_COMPAT_ERROR, NTFY_TOPIC_INVALID,
                               _("invalid request: topic invalid; “topic” must be the channel’s "
                                 "trigger token (1 to 64 letters, digits, - and _)"));
          return NULL;
        }
      request->topic = g_strdup (topic);
    }
  else
    request->topic = g_strdup (path_topic);

  if (!read_ntfy_params (&params, request, error))
    return NULL;
  if (json != NULL)
    {
      if (!read_ntfy_json (json, request, error))
        return NULL;
    }
  else if (length > 0)
    {
      g_autofree char *text = NULL;

      /* PUT/POST /{topic}: the body is the message, whatever its Content-Type. */
      if (!g_utf8_validate_len (data, length, NULL) || memchr (data, '\0', length) != NULL)
        {
          g_set_error_literal (error, TOCSIN_RELAY_COMPAT_ERROR, NTFY_NOT_UTF8,
                               _("invalid request: message must be UTF-8 encoded"));
          return NULL;
        }
      text = g_strstrip (g_strndup (data, length));
      if (*text != '\0')
        set_string (&request->message, text);
    }
  if (*request->message == '\0')
    set_string (&request->message, EMPTY_MESSAGE);
  request->priority_set = request->priority != 0;
  if (request->priority == 0)
    request->priority = 3;

  /* Authorization (or ?auth=) carrying a token wins: the topic is then only a name. */
  auth = token_from_authorization (headers ? soup_message_headers_get_one (headers,
                                                                           "Authorization")
                                           : NULL);
  auth_param = tocsin_json_get_string (query_vars, "auth", NULL);
  if (auth == NULL && auth_param != NULL)
    auth = token_from_auth_param (auth_param);
  request->token = auth ? g_steal_pointer (&auth) : g_strdup (request->topic);

  finish (request);
  return g_steal_pointer (&request);
}

/* Gotify's priority as a form gives it: an integer. */
static gboolean
parse_int (const char *text,
           gint64     *value)
{
  char *end = NULL;

  if (*text == '\0')
    return FALSE;
  errno = 0;
  *value = g_ascii_strtoll (text, &end, 10);
  return errno == 0 && *end == '\0';
}

/* multipart/form-data (curl -F): each part named in its Content-Disposition is a field. The
 * one reader of it is tocsin-relay-body.c's (libsoup's parser, guarded). */
static gboolean
read_multipart (SoupMessageHeaders  *headers,
                GBytes              *body,
                JsonObject          *fields,
                GError             **error)
{
  g_autoptr(GError) local = NULL;
  gsize size = 0;
  const char *bytes = g_bytes_get_data (body, &size);
  guint status = SOUP_STATUS_BAD_REQUEST;

  if (!tocsin_relay_body_read_multipart (headers, bytes, size, fields, &status, &local))
    {
      g_set_error_literal (error, TOCSIN_RELAY_COMPAT_ERROR,
                           status == SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE ? 41301 : 40001,
                           local->message);
      return FALSE;
    }
  return TRUE;
}

TocsinRelayCompatRequest *
tocsin_relay_compat_read_gotify (SoupMessageHeaders  *headers,
                                 const char          *query,
                                 GBytes              *body,
                                 gsize                max_body,
                                 GError             **error)
{
  g_autoptr(TocsinRelayCompatRequest) request = request_new (TRUE);
  g_autoptr(JsonObject) fields = json_object_new ();
  g_autoptr(GError) local = NULL;
  const char *data = NULL, *type = NULL, *token, *text;
  gsize length = 0;

  if (body != NULL)
    data = g_bytes_get_data (body, &length);
  if (headers != NULL)
    type = soup_message_headers_get_content_type (headers, NULL);
  if (query != NULL && *query != '\0' &&
      !tocsin_relay_body_add_form_pairs (fields, query, -1, _("query string"), &local))
    {
      g_set_error_literal (error, TOCSIN_RELAY_COMPAT_ERROR, 40001, local->message);
      return NULL;
    }

  /* Gotify's order: ?token=, X-Gotify-Key, Authorization: Bearer. */
  token = tocsin_json_get_string (fields, "token", NULL);
  if (token == NULL && headers != NULL)
    token = soup_message_headers_get_one (headers, "X-Gotify-Key");
  if (token != NULL && *token != '\0')
    request->token = g_strstrip (g_strdup (token));
  else if (headers != NULL)
    {
      const char *authorization = soup_message_headers_get_one (headers, "Authorization");

      if (authorization != NULL && g_ascii_strncasecmp (authorization, "Bearer ", 7) == 0)
        request->token = g_strstrip (g_strdup (authorization + 7));
    }
  if (request->token == NULL || *request->token == '\0')
    {
      g_set_error_literal (error, TOCSIN_RELAY_COMPAT_ERROR, 40101,
                           _("you need to provide a valid access token or user credentials to "
                             "access this api: give the channel’s trigger token as X-Gotify-Key, "
                             "?token= or Authorization: Bearer"));
      return NULL;
    }
  json_object_remove_member (fields, "token");

  if (length > 0 && type != NULL && (g_ascii_strcasecmp (type, "application/json") == 0 ||
                                     g_str_has_suffix (type, "+json")))
    {
      g_autoptr(JsonObject) json = tocsin_json_parse_object (data, length, max_body,
                                                             TOCSIN_JSON_DEFAULT_MAX_DEPTH,
                                                             &local);
      JsonNode *node;
      gint64 priority = 0;
      gboolean present = FALSE;

      if (json == NULL)
        {
          g_set_error_literal (error, TOCSIN_RELAY_COMPAT_ERROR, 40001, local->message);
          return NULL;
        }
      if (!json_take_string (json, "title", &request->title, 40001, error) ||
          !json_take_string (json, "message", &request->message, 40001, error) ||
          !json_take_int (json, "priority", &priority, &present, 40001, error))
        return NULL;
      if (present)
        {
          request->priority = priority;
          request->priority_set = TRUE;
        }
      node = json_object_get_member (json, "extras");
      if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
        {
          if (!JSON_NODE_HOLDS_OBJECT (node))
            {
              json_error (error, 40001, "extras", _("an object"));
              return NULL;
            }
          request->extras = json_object_ref (json_node_get_object (node));
        }
    }
  else if (length > 0 && type != NULL &&
           g_ascii_strcasecmp (type, "application/x-www-form-urlencoded") == 0)
    {
      if (!tocsin_relay_body_add_form_pairs (fields, data, length, _("body"), &local))
        {
          g_set_error_literal (error, TOCSIN_RELAY_COMPAT_ERROR, 40001, local->message);
          return NULL;
        }
    }
  else if (length > 0 && type != NULL && g_ascii_strcasecmp (type, "multipart/form-data") == 0)
    {
      if (!read_multipart (headers, body, fields, error))
        return NULL;
    }
  else if (length > 0)
    {
      /* The sender's header, said back as text: it may be anything but UTF-8. */
      g_autofree char *shown = type ? g_utf8_make_valid (type, -1) : NULL;

      g_set_error (error, TOCSIN_RELAY_COMPAT_ERROR, 41501,
                   _("Gotify messages come as application/json or "
                     "application/x-www-form-urlencoded, not %s"),
                   shown ? shown : _("a body without a Content-Type"));
      return NULL;
    }

  /* Form fields and the query (a JSON body's members win). */
  if (*request->title == '\0' && (text = tocsin_json_get_string (fields, "title", NULL)))
    set_string (&request->title, text);
  if (*request->message == '\0' && (text = tocsin_json_get_string (fields, "message", NULL)))
    set_string (&request->message, text);
  if (!request->priority_set && (text = tocsin_json_get_string (fields, "priority", NULL)))
    {
      if (!parse_int (text, &request->priority))
        {
          g_set_error_literal (error, TOCSIN_RELAY_COMPAT_ERROR, 40001,
                               _("Field 'priority' is not valid: give a whole number"));
          return NULL;
        }
      request->priority_set = TRUE;
    }
  if (*request->message == '\0')
    {
      g_set_error_literal (error, TOCSIN_RELAY_COMPAT_ERROR, 40001,
                           _("Field 'message' is required"));
      return NULL;
    }

  /* extras["client::notification"].click.url, extras["client::display"].contentType */
  if (request->extras != NULL)
    {
      JsonNode *node = json_object_get_member (request->extras, "client::notification");

      if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
        {
          JsonNode *click = json_object_get_member (json_node_get_object (node), "click");

          if (click != NULL && JSON_NODE_HOLDS_OBJECT (click))
            {
              const char *url = tocsin_json_get_string (json_node_get_object (click), "url",
                                                        NULL);

              if (url != NULL)
                set_string (&request->click, url);
            }
        }
      node = json_object_get_member (request->extras, "client::display");
      if (node != NULL && JSON_NODE_HOLDS_OBJECT (node) &&
          g_strcmp0 (tocsin_json_get_string (json_node_get_object (node), "contentType", NULL),
                     "text/markdown") == 0)
        request->markdown = TRUE;
    }

  finish (request);
  return g_steal_pointer (&request);
}

/* ---- Answers ----------------------------------------------------------------------------- */

/* ntfy's error object: {"code": 40401, "http": 404, "error": "…"}. */
static void
ntfy_reply_error_code (SoupServerMessage *msg,
                       guint              status,
                       gint               code,
                       const char        *sentence)
{
  g_autoptr(JsonObject) object = json_object_new ();

  json_object_set_int_member (object, "code", code);
  json_object_set_int_member (object, "http", status);
  json_object_set_string_member (object, "error", sentence);
  tocsin_relay_server_reply_json (msg, status, object);
}

static void
ntfy_reply_error (SoupServerMessage *msg,
                  guint              status,
                  const char        *sentence,
                  gpointer           user_data)
{
  /* ntfy's codes are the status and a number; its first of each status is the general one. */
  ntfy_reply_error_code (msg, status, status * 100 + 1, sentence);
}

/* ntfy's message object, as it stored what the sender sent. */
/* What Tocsin's own answer says beyond the service's object (docs/api.md): a condition that
 * filtered it, a redelivery, a dropped link, and how many subscribers were online. */
static void
add_tocsin_members (JsonObject                     *reply,
                    const TocsinRelayIngestOutcome *outcome)
{
  if (outcome->filtered)
    json_object_set_boolean_member (reply, "filtered", TRUE);
  if (outcome->duplicate)
    json_object_set_boolean_member (reply, "duplicate", TRUE);
  if (outcome->rendered->link_dropped)
    json_object_set_string_member (reply, "linkDropped", outcome->rendered->link_dropped);
  json_object_set_int_member (reply, "subscribers", outcome->subscribers);
}

static void
ntfy_reply_done (SoupServerMessage              *msg,
                 const TocsinRelayIngestOutcome *outcome,
                 gpointer                        user_data)
{
  TocsinRelayCompatRequest *request = user_data;
  g_autoptr(JsonObject) reply = json_object_new ();
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, outcome->id);
  gint64 time = outcome->time_ms / 1000;

  json_object_set_string_member (reply, "id", id);
  json_object_set_int_member (reply, "time", time);
  if (request->expires_seconds > 0)
    json_object_set_int_member (reply, "expires", time + request->expires_seconds);
  json_object_set_string_member (reply, "event", "message");
  json_object_set_string_member (reply, "topic", request->topic);
  if (*request->title != '\0')
    json_object_set_string_member (reply, "title", request->title);
  json_object_set_string_member (reply, "message", request->message);
  if (request->priority_set)
    json_object_set_int_member (reply, "priority", request->priority);
  if (json_array_get_length (request->tags) > 0)
    json_object_set_array_member (reply, "tags", json_array_ref (request->tags));
  if (*request->click != '\0')
    json_object_set_string_member (reply, "click", request->click);
  if (json_array_get_length (request->actions) > 0)
    json_object_set_array_member (reply, "actions", json_array_ref (request->actions));
  if (request->markdown)
    json_object_set_string_member (reply, "content_type", "text/markdown");
  /* Beyond ntfy's object: what Tocsin's own answer would add (docs/api.md). */
  add_tocsin_members (reply, outcome);
  tocsin_relay_server_reply_json (msg, SOUP_STATUS_OK, reply);
}

static const TocsinRelayIngestDialect ntfy_dialect = { ntfy_reply_error, ntfy_reply_done };

/* Gotify's error object: {"error": "Unauthorized", "errorCode": 401, "errorDescription": "…"}.
 * An unknown token is 401 there, not 404. */
static void
gotify_reply_error (SoupServerMessage *msg,
                    guint              status,
                    const char        *sentence,
                    gpointer           user_data)
{
  g_autoptr(JsonObject) object = json_object_new ();
  const char *phrase;

  if (status == SOUP_STATUS_NOT_FOUND && user_data != NULL)
    status = SOUP_STATUS_UNAUTHORIZED;
  phrase = status == 429 ? "Too Many Requests" : soup_status_get_phrase (status);
  json_object_set_string_member (object, "error", phrase ? phrase : "Error");
  json_object_set_int_member (object, "errorCode", status);
  json_object_set_string_member (object, "errorDescription", sentence);
  tocsin_relay_server_reply_json (msg, status, object);
}

static void
gotify_reply_done (SoupServerMessage              *msg,
                   const TocsinRelayIngestOutcome *outcome,
                   gpointer                        user_data)
{
  TocsinRelayCompatRequest *request = user_data;
  g_autoptr(JsonObject) reply = json_object_new ();
  g_autofree char *when = NULL;

  json_object_set_int_member (reply, "id", outcome->id);
  json_object_set_int_member (reply, "appid", outcome->channel_id);
  json_object_set_string_member (reply, "message", request->message);
  /* Gotify names an untitled message after its application. */
  json_object_set_string_member (reply, "title", *request->title != '\0'
                                                   ? request->title : outcome->channel_name);
  json_object_set_int_member (reply, "priority", request->priority);
  if (request->extras != NULL)
    json_object_set_object_member (reply, "extras", json_object_ref (request->extras));
  when = tocsin_format_time_ms (outcome->time_ms);
  json_object_set_string_member (reply, "date", when);
  add_tocsin_members (reply, outcome);
  tocsin_relay_server_reply_json (msg, SOUP_STATUS_OK, reply);
}

static const TocsinRelayIngestDialect gotify_dialect = { gotify_reply_error, gotify_reply_done };

/* ---- Handlers ---------------------------------------------------------------------------- */

static void
copy_visible_header (const char *name,
                     const char *value,
                     gpointer    user_data)
{
  /* The token travels in these: templates must not be able to show it to subscribers. */
  if (g_ascii_strcasecmp (name, "Authorization") == 0 ||
      g_ascii_strcasecmp (name, "X-Gotify-Key") == 0 ||
      g_ascii_strcasecmp (name, "Proxy-Authorization") == 0 ||
      g_ascii_strcasecmp (name, "Cookie") == 0)
    return;
  soup_message_headers_append (user_data, name, value);
}

static void
reply_read_error (SoupServerMessage *msg,
                  gboolean           gotify,
                  guint              status,
                  GError            *error)
{
  gint code = error->domain == TOCSIN_RELAY_COMPAT_ERROR ? error->code : (gint) status * 100 + 1;

  if (error->domain == TOCSIN_RELAY_COMPAT_ERROR)
    status = error->code / 100;
  if (gotify)
    gotify_reply_error (msg, status, error->message, NULL);
  else
    ntfy_reply_error_code (msg, status, code, error->message);
}

void
tocsin_relay_compat_handle (TocsinRelay            *relay,
                            SoupServerMessage      *msg,
                            TocsinRelayCompatRoute  route,
                            const char             *path)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupMessageBody *request_body = soup_server_message_get_request_body (msg);
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  gboolean gotify = route == TOCSIN_RELAY_COMPAT_GOTIFY;
  g_autoptr(TocsinRelayCompatRequest) request = NULL;
  g_autoptr(SoupMessageHeaders) visible = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *topic = NULL;

  g_return_if_fail (relay != NULL);
  g_return_if_fail (route != TOCSIN_RELAY_COMPAT_NONE);

  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Cache-Control", "no-store");
  tocsin_relay_compat_match (soup_server_message_get_method (msg), path, &topic);

  if (route != TOCSIN_RELAY_COMPAT_NTFY_PUBLISH && request_body->length > 0)
    {
      guint status = SOUP_STATUS_BAD_REQUEST;
      g_autoptr(GBytes) raw = NULL;

      if ((gsize) request_body->length > relay->config.max_body)
        {
          g_autofree char *limit = g_format_size_full (relay->config.max_body,
                                                       G_FORMAT_SIZE_IEC_UNITS);
          g_autofree char *sentence = g_strdup_printf (_("The body is larger than this relay "
                                                         "takes (%s)"), limit);

          (gotify ? gotify_dialect : ntfy_dialect).reply_error (
            msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, sentence, NULL);
          return;
        }
      raw = soup_message_body_flatten (request_body);
      body = tocsin_relay_body_decode (headers, raw, relay->config.max_body, &status, &error);
      if (body == NULL)
        {
          reply_read_error (msg, gotify, status, error);
          return;
        }
    }

  if (gotify)
    request = tocsin_relay_compat_read_gotify (headers, query, body, relay->config.max_body,
                                               &error);
  else
    request = tocsin_relay_compat_read_ntfy (topic, headers, query, body,
                                             relay->config.max_body, &error);
  if (request == NULL)
    {
      reply_read_error (msg, gotify, SOUP_STATUS_BAD_REQUEST, error);
      return;
    }
  request->expires_seconds = relay->config.retention_seconds;

  visible = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  soup_message_headers_foreach (headers, copy_visible_header, visible);
  {
    /* The dialect reads the request until it has answered; it owns it from here. */
    TocsinRelayCompatRequest *owned = g_steal_pointer (&request);
    g_autofree char *token = g_strdup (owned->token);

    tocsin_relay_ingest_submit (relay, msg, token, owned->vars, visible, &owned->hints,
                                gotify ? &gotify_dialect : &ntfy_dialect, owned,
                                (GDestroyNotify) tocsin_relay_compat_request_free);
  }
}
