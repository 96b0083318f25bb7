//! Review decisions: a rejection e-mails its reason and the hospital may
//! apply again; an approval's activation link can be sent again (the old one
//! dies); the reviewer copies of scans go when the review ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod web_common;

use web_common::*;

async fn apply(srv: &Srv, code: &str, email: &str) -> String {
    let b = srv.browser(false);
    b.get("/apply").await;
    let tok = b.token();
    let r = b
        .post_multipart(
            "/apply",
            &[
                ("csrf", &tok),
                ("name", "天津市和平区中心医院"),
                ("uscc", code),
                ("licence_no", "PDY00002X12010117A1002"),
                ("level", "2"),
                ("region", "120101"),
                ("contact_name", "李科长"),
                ("email", email),
                ("phone", "022-23456789"),
            ],
            &[
                ("form", "form.jpg", "image/jpeg", vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F']),
                ("licence", "licence.pdf", "application/pdf", pdf()),
            ],
        )
        .await;
    assert!(r.text().contains("申请已提交"), "{}", r.text());
    between(&r.text(), "<b class=\"secret\">", "</b>").unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_then_apply_again_then_approve_and_resend() {
    let srv = Srv::start(&[]).await;
    let code = uscc("12120101MB0000201");
    let email = "office@tj-hospital.example.cn";
    let no1 = apply(&srv, &code, email).await;

    let (rname, rpw, rsecret) = srv.reviewer("reviewer2").await;
    let mut rt = Totp::activated(rsecret);
    let a = srv.browser(true);
    assert_eq!(a.login(&rname, &rpw, &rt.code().await).await.status, 303);
    a.get(&format!("/review/{no1}")).await;
    let empty = a.post_form(&format!("/review/{no1}/reject"), &[("reason", " ")]).await;
    assert_eq!(empty.status, 400, "a reason is required");
    let reason = "申请表未加盖单位公章, 请盖章后重新扫描上传";
    let r = a.post_form(&format!("/review/{no1}/reject"), &[("reason", reason)]).await;
    assert_eq!(r.status, 303);
    assert_eq!(a.get(&format!("/review/{no1}/scan/form")).await.status, 404, "reviewer copy gone");
    assert!(flumon_dmz::hospitals::get(&srv.state, &code).unwrap().is_none());
    let mail = srv.mails().into_iter().find(|m| m.body.contains("未通过审核")).expect("rejection mail");
    assert_eq!(mail.to, email);
    assert!(mail.body.contains(reason));
    let done = a.get("/review/done").await.text();
    assert!(done.contains(&no1) && done.contains("未通过"));

    // the status page tells the applicant, and a new application is allowed
    let b = srv.browser(false);
    b.get("/apply/status").await;
    let st = b.post_form("/apply/status", &[("no", &no1), ("uscc", &code)]).await.text();
    assert!(st.contains("未通过") && st.contains(reason));
    let wrong = b.post_form("/apply/status", &[("no", &no1), ("uscc", &uscc("12120101MB0000202"))]).await.text();
    assert!(wrong.contains("未找到该申请"), "the number alone tells nothing");
    let no2 = apply(&srv, &code, email).await;
    assert_ne!(no1, no2);

    // approve the second; the first link is replaced by a resent one
    a.get(&format!("/review/{no2}")).await;
    assert_eq!(a.post_form(&format!("/review/{no2}/approve"), &[]).await.status, 303);
    let first_link = srv.mails().into_iter().filter_map(|m| m.link("/activate/")).next().unwrap();
    let page = a.get(&format!("/review/{no2}")).await.text();
    assert!(page.contains("重新发送激活邮件"));
    assert_eq!(a.post_form(&format!("/review/{no2}/resend"), &[]).await.status, 303);
    let links: Vec<_> = srv.mails().into_iter().filter_map(|m| m.link("/activate/")).collect();
    assert_eq!(links.len(), 2);
    let path = |l: &str| format!("/activate/{}", l.split_once("/activate/").unwrap().1);
    let h = srv.browser(false);
    assert_eq!(h.get(&path(&first_link)).await.status, 400, "the first link died");
    let second = links.iter().find(|l| **l != first_link).unwrap();
    let mut h = srv.browser(false);
    activate(&mut h, &path(second), "Tianjin-Pass-2025#").await;
    // activated: nothing more to resend
    assert_eq!(a.post_form(&format!("/review/{no2}/resend"), &[]).await.status, 409);
    let journal = std::fs::read_to_string(srv.state.config.paths.data_dir.join("audit.jsonl")).unwrap();
    assert!(journal.contains("web.review.rejected") && journal.contains("web.activation_resent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewer_link_only_on_the_admin_listener() {
    let srv = Srv::start(&[]).await;
    let url = flumon_dmz::web::create_reviewer(&srv.state, "reviewer3").await.unwrap();
    assert!(url.starts_with(&format!("https://{}/activate/", srv.admin)), "{url}");
    let path = format!("/activate/{}", url.split_once("/activate/").unwrap().1);
    assert_eq!(srv.browser(false).get(&path).await.status, 400, "not on the public listener");
    assert_eq!(srv.browser(true).get(&path).await.status, 200);
    assert!(flumon_dmz::web::create_reviewer(&srv.state, "reviewer3").await.is_err(), "names are unique");
    assert!(flumon_dmz::web::create_reviewer(&srv.state, "x y").await.is_err());
}
