//! The form's HTML pages: plain HTML and a little inline CSS, no script, so they work in any
//! browser with JavaScript off, and a strict Content-Security-Policy can forbid scripts outright.
//! Every value that is not a literal of this file goes through [`escape`].

use axum::response::{IntoResponse, Response};
use ecomdrive_core::data_rights::{DeletionReceipt, DeletionStatus};
use http::{HeaderValue, StatusCode, header};
use time::OffsetDateTime;
use time::macros::format_description;

/// No script, no external anything, no framing; the form may post only to this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// A page with the headers every page of the form carries: nothing cached (a page may hold a
/// CSRF token or a confirmation code), no referrer (the confirmation link's token is in its
/// URL), never in a frame (clickjacking), no type sniffing.
pub fn respond(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · EcomDrive</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>\n",
        title = escape(title),
    );
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}\
    main{max-width:36rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:8px}\
    h1{font-size:1.5rem;margin-top:0}label{display:block;font-weight:600;margin:1rem 0 .25rem}\
    input[type=email]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}\
    button{margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem}\
    .error{color:#a40e26;font-weight:600}table{border-collapse:collapse}\
    td,th{text-align:left;padding:.25rem 1rem .25rem 0}code{font-size:1.05rem}";

/// What the form deletes, said once for the form and the e-mail alike.
pub const WHAT_IS_DELETED: &str = "Your EcomDrive user account, your memberships of merchant \
     accounts, and every merchant account of which you are the only owner, with all of its data. \
     Records the law makes us keep (payment records) are kept for their legal period only. A \
     receipt with a confirmation code, dates and counts, and no personal data, is kept as proof.";

/// The form, with `error` (and the address as typed) when the last try was refused.
pub fn form(csrf_token: &str, email: &str, error: Option<&str>) -> String {
    let error_html = error
        .map(|e| {
            format!(
                "<p class=\"error\" id=\"email-error\" role=\"alert\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let described_by = if error.is_some() {
        " aria-describedby=\"email-error\" aria-invalid=\"true\""
    } else {
        ""
    };
    format!(
        "<h1>Delete my EcomDrive data</h1>\
         <p>{what}</p>\
         <p>Enter the e-mail address of your account. We will e-mail a confirmation link to it; \
         nothing is deleted until you open that link, which works for 24 hours.</p>\
         <form method=\"post\" action=\"/data-deletion\">\
         {error_html}\
         <label for=\"email\">E-mail address</label>\
         <input type=\"email\" id=\"email\" name=\"email\" required maxlength=\"254\" \
         autocomplete=\"email\" value=\"{email}\"{described_by}>\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <button type=\"submit\">Send me the confirmation link</button>\
         </form>",
        what = escape(WHAT_IS_DELETED),
        email = escape(email),
        csrf = escape(csrf_token),
    )
}

/// The one answer to every accepted request, whether or not an account has the address.
pub fn sent() -> String {
    "<h1>Check your e-mail</h1>\
     <p>If an account exists for this address, we have sent a link to it. Open the link within \
     24 hours to confirm the deletion. Nothing is deleted until you do.</p>\
     <p>No e-mail? Check your spam folder, or <a href=\"/data-deletion\">ask again</a>.</p>"
        .to_owned()
}

/// A refusal (or failure) that sends the person back to the form.
pub fn back_to_form(heading: &str, text: &str) -> String {
    format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"/data-deletion\">Back to the data deletion form</a></p>",
        escape(heading),
        escape(text)
    )
}

fn date(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

pub fn status_label(s: DeletionStatus) -> &'static str {
    match s {
        DeletionStatus::Pending => "pending",
        DeletionStatus::Running => "running",
        DeletionStatus::Done => "done",
    }
}

/// The status of a deletion: its confirmation code, dates and, once done, counts per kind of
/// record. Never who or what was deleted.
pub fn status(r: &DeletionReceipt) -> String {
    let explain = match r.status {
        DeletionStatus::Pending => "Your request is recorded and queued.",
        DeletionStatus::Running => "The deletion is under way.",
        DeletionStatus::Done => "The deletion is complete.",
    };
    let mut rows = format!(
        "<tr><th>Confirmation code</th><td><code id=\"confirmation-code\">{code}</code></td></tr>\
         <tr><th>Status</th><td id=\"status\">{status}</td></tr>\
         <tr><th>Requested</th><td>{requested}</td></tr>\
         <tr><th>Due by</th><td>{due}</td></tr>",
        code = escape(r.id.as_str()),
        status = status_label(r.status),
        requested = date(r.requested_at),
        due = date(r.due_by),
    );
    if let Some(done) = r.completed_at {
        rows.push_str(&format!(
            "<tr><th>Completed</th><td>{}</td></tr>",
            date(done)
        ));
    }
    let counts = if r.status == DeletionStatus::Done && !r.counts.is_empty() {
        let lines: String = r
            .counts
            .iter()
            .map(|(kind, count)| format!("<tr><td>{}</td><td>{count}</td></tr>", escape(kind)))
            .collect();
        format!(
            "<h2>Records</h2><table><tr><th>Kind</th><th>Count</th></tr>{lines}</table>\
             <p>Kinds marked <code>kept:</code> are records the law makes us keep.</p>"
        )
    } else {
        String::new()
    };
    format!(
        "<h1>Data deletion status</h1><p>{explain} Keep the confirmation code to check on it \
         here.</p><table>{rows}</table>{counts}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecomdrive_core::data_rights::{DeletionChannel, DeletionSubject};
    use ecomdrive_core::ids::UserId;
    use time::macros::datetime;

    #[test]
    fn escape_neutralises_markup_in_content_and_attributes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;y&#x27;"
        );
        assert_eq!(escape("plain ü text"), "plain ü text");
    }

    #[test]
    fn the_form_escapes_what_the_person_typed_and_has_both_fields() {
        let page = form("tok\"en", "\"><script>x</script>", Some("<b>bad</b>"));
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<b>bad"));
        assert!(page.contains("value=\"&quot;&gt;&lt;script&gt;"));
        assert!(page.contains("name=\"email\""));
        assert!(page.contains("name=\"csrf_token\" value=\"tok&quot;en\""));
        assert!(page.contains("method=\"post\""));
    }

    #[test]
    fn every_page_forbids_scripts_framing_caching_and_referrers() {
        let res = respond(StatusCode::OK, "T<", "<p>x</p>");
        let h = res.headers();
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        assert!(!CONTENT_SECURITY_POLICY.contains("script-src"));
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none'"));
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    }

    #[test]
    fn the_status_page_shows_code_dates_and_counts_but_no_subject() {
        let mut r = DeletionReceipt::new(
            DeletionSubject::User {
                user_id: UserId::parse("usr-secret-id").unwrap(),
            },
            DeletionChannel::Form,
            datetime!(2026-11-22 10:00:00 UTC),
        );
        let pending = status(&r);
        assert!(pending.contains(r.id.as_str()));
        assert!(pending.contains(">pending<"));
        assert!(pending.contains("2026-11-22 10:00 UTC"));
        assert!(pending.contains("2026-12-22 10:00 UTC"));
        assert!(!pending.contains("usr-secret-id"));
        r.status = DeletionStatus::Done;
        r.completed_at = Some(datetime!(2026-11-23 08:30:00 UTC));
        r.counts.insert("membership".into(), 2);
        r.counts.insert("<kind>".into(), 1);
        let done = status(&r);
        assert!(done.contains("2026-11-23 08:30 UTC"));
        assert!(done.contains("<td>membership</td><td>2</td>"));
        assert!(done.contains("&lt;kind&gt;"));
    }
}
