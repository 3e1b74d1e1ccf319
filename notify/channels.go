package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Message is what one delivery says: a subject and a plain-text body, and
// the structured warnings for channels that carry JSON.
type Message struct {
	Subject string
	Text    string
	Payload any
	Channel string
	To      string
	Role    string
}

// permanentError marks a failure that retrying cannot fix (a 4xx answer,
// an address the relay refuses); it is dead-lettered at once.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// statusError carries the HTTP status of a failed call for the record.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.code, e.body)
}

func httpFailure(code int, body []byte) error {
	err := &statusError{code: code, body: strings.TrimSpace(string(body[:min(len(body), 200)]))}
	if code >= 400 && code < 500 && code != 408 && code != 429 {
		return permanentError{err}
	}
	return err
}

// sender delivers messages over the network. It is safe for concurrent use.
type sender struct {
	cfg    *Config
	client *http.Client
	now    func() time.Time
}

func (s *sender) send(ctx context.Context, m *Message) error {
	switch m.Channel {
	case ChannelEmail:
		return s.sendMail(ctx, m)
	case ChannelWebhook:
		return s.sendWebhook(ctx, m)
	case ChannelWeCom, ChannelDingTalk, ChannelFeishu:
		return s.sendBot(ctx, m)
	}
	return permanentError{fmt.Errorf("unknown channel %q", m.Channel)}
}

// sendMail sends over SMTP with STARTTLS when the relay offers it.
func (s *sender) sendMail(ctx context.Context, m *Message) error {
	if strings.ContainsAny(m.To, "\r\n") || strings.ContainsAny(s.cfg.SMTP.From, "\r\n") {
		return permanentError{errors.New("address contains a line break")}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
		s.cfg.SMTP.From, m.To, mime.QEncoding.Encode("utf-8", m.Subject), s.now().Format(time.RFC1123Z))
	enc := base64.StdEncoding.EncodeToString([]byte(m.Text))
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	var auth smtp.Auth
	if s.cfg.SMTP.Username != "" {
		host, _, _ := net.SplitHostPort(s.cfg.SMTP.Addr)
		auth = smtp.PlainAuth("", s.cfg.SMTP.Username, s.cfg.SMTP.Password, host)
	}
	if err := s.smtpSend(ctx, auth, m.To, b.Bytes()); err != nil {
		var te *textproto.Error
		if errors.As(err, &te) && te.Code >= 500 {
			// 5xx replies are permanent (mailbox unknown, relay denied).
			return permanentError{err}
		}
		return err
	}
	return nil
}

// smtpSend is smtp.SendMail with a context: the dial and the whole
// conversation are bounded by ctx and HTTPTimeout (one bound for every
// network call of the dispatcher).
func (s *sender) smtpSend(ctx context.Context, auth smtp.Auth, to string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.cfg.HTTPTimeout))
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", s.cfg.SMTP.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(s.cfg.SMTP.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.Mail(s.cfg.SMTP.From); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// Signature returns the value of the X-Classpulse-Signature header of a
// generic webhook: "sha256=" + hex HMAC-SHA256(secret, timestamp + "." +
// body), timestamp being the X-Classpulse-Timestamp header (Unix seconds).
// Receivers recompute it and reject timestamps older than a few minutes.
func Signature(secret, timestamp string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(timestamp + "."))
	h.Write(body)
	return "sha256=" + hex.EncodeToString(h.Sum(nil))
}

func (s *sender) post(ctx context.Context, url string, body []byte, hdr map[string]string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.cfg.HTTPTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, permanentError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "classpulse-notify/1")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return rb, httpFailure(resp.StatusCode, rb)
	}
	return rb, nil
}

func (s *sender) sendWebhook(ctx context.Context, m *Message) error {
	body, err := json.Marshal(m.Payload)
	if err != nil {
		return permanentError{err}
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	_, err = s.post(ctx, m.To, body, map[string]string{
		"X-Classpulse-Timestamp": ts,
		"X-Classpulse-Signature": Signature(s.cfg.WebhookSecret, ts, body),
	})
	return err
}

// BotBody returns the JSON a group bot of channel expects for a message
// (WeCom and DingTalk markdown, Feishu text), signed for DingTalk and
// Feishu when secret is set, and the URL to post it to.
func BotBody(channel, botURL, secret, subject, text string, now time.Time) (string, []byte, error) {
	var v any
	switch channel {
	case ChannelWeCom:
		// https://developer.work.weixin.qq.com/document/path/91770
		v = map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": "**" + subject + "**\n" + text}}
	case ChannelDingTalk:
		// https://open.dingtalk.com/document/robots/custom-robot-access
		v = map[string]any{"msgtype": "markdown", "markdown": map[string]string{"title": subject, "text": "### " + subject + "\n" + text}}
		if secret != "" {
			ts := strconv.FormatInt(now.UnixMilli(), 10)
			h := hmac.New(sha256.New, []byte(secret))
			h.Write([]byte(ts + "\n" + secret))
			u, err := url.Parse(botURL)
			if err != nil {
				return "", nil, err
			}
			q := u.Query()
			q.Set("timestamp", ts)
			q.Set("sign", base64.StdEncoding.EncodeToString(h.Sum(nil)))
			u.RawQuery = q.Encode()
			botURL = u.String()
		}
	case ChannelFeishu:
		// https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot
		m := map[string]any{"msg_type": "text", "content": map[string]string{"text": subject + "\n" + text}}
		if secret != "" {
			ts := strconv.FormatInt(now.Unix(), 10)
			h := hmac.New(sha256.New, []byte(ts+"\n"+secret))
			m["timestamp"] = ts
			m["sign"] = base64.StdEncoding.EncodeToString(h.Sum(nil))
		}
		v = m
	default:
		return "", nil, fmt.Errorf("%q is not a group-bot channel", channel)
	}
	b, err := json.Marshal(v)
	return botURL, b, err
}

func (s *sender) sendBot(ctx context.Context, m *Message) error {
	u, body, err := BotBody(m.Channel, m.To, s.cfg.BotSecrets[m.To], m.Subject, m.Text, s.now())
	if err != nil {
		return permanentError{err}
	}
	rb, err := s.post(ctx, u, body, nil)
	if err != nil {
		return err
	}
	// The bots answer 200 with an error code in the body.
	var r struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
		Code    *int   `json:"code"`
		Msg     string `json:"msg"`
	}
	if json.Unmarshal(rb, &r) == nil {
		if r.ErrCode != nil && *r.ErrCode != 0 {
			return fmt.Errorf("bot error %d: %s", *r.ErrCode, r.ErrMsg)
		}
		if r.Code != nil && *r.Code != 0 {
			return fmt.Errorf("bot error %d: %s", *r.Code, r.Msg)
		}
	}
	return nil
}
