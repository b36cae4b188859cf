#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sends one message with Python's smtplib, as a program that mails a relay would, and prints
what the server answered as one JSON object for tests/test-relay-smtp.c:
  {"stage": "done"|"connect"|"starttls"|"mail"|"rcpt"|"data", "code": N, "text": "...",
   "features": [...EHLO keywords...], "tls": bool}
--no-size sends MAIL FROM without SIZE= (smtplib adds it on its own when the server offers
SIZE), so that an oversize message is refused during DATA instead."""

import argparse
import json
import smtplib
import ssl
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sender", default="sender@example.org")
    parser.add_argument("--to", action="append", required=True)
    parser.add_argument("--message", required=True, help="file with the RFC 5322 message")
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--cafile")
    parser.add_argument("--no-size", action="store_true")
    args = parser.parse_args()

    with open(args.message, "rb") as f:
        message = f.read()

    result = {"stage": "connect", "code": 0, "text": "", "features": [], "tls": False}

    def answer(stage, code, text):
        if isinstance(text, bytes):
            text = text.decode("ascii", "replace")
        result.update(stage=stage, code=code, text=text)

    try:
        smtp = smtplib.SMTP("127.0.0.1", args.port, timeout=30)
        smtp.ehlo("tocsin-test.example")
        result["features"] = sorted(smtp.esmtp_features.keys())
        if args.starttls:
            result["stage"] = "starttls"
            context = ssl.create_default_context(cafile=args.cafile)
            smtp.starttls(context=context)
            smtp.ehlo("tocsin-test.example")
            result["tls"] = True
            result["features"] = sorted(smtp.esmtp_features.keys())
        if args.no_size:
            code, text = smtp.mail(args.sender)
            if code != 250:
                answer("mail", code, text)
            else:
                for to in args.to:
                    code, text = smtp.rcpt(to)
                    if code not in (250, 251):
                        answer("rcpt", code, text)
                        break
                else:
                    code, text = smtp.data(message)
                    answer("done" if code == 250 else "data", code, text)
        else:
            smtp.sendmail(args.sender, args.to, message)
            answer("done", 250, "")
        try:
            smtp.quit()
        except smtplib.SMTPServerDisconnected:
            pass
    except smtplib.SMTPSenderRefused as e:
        answer("mail", e.smtp_code, e.smtp_error)
    except smtplib.SMTPRecipientsRefused as e:
        code, text = next(iter(e.recipients.values()))
        answer("rcpt", code, text)
    except smtplib.SMTPDataError as e:
        answer("data", e.smtp_code, e.smtp_error)
    except smtplib.SMTPResponseException as e:
        answer(result["stage"], e.smtp_code, e.smtp_error)
    except smtplib.SMTPNotSupportedError as e:
        answer(result["stage"], 0, str(e))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
