//! The texts of the e-mails the web side sends (subject, body), in Chinese
//! with the English gist. They carry application numbers and links, never a
//! password or a code.

/// Application received.
pub fn received(no: &str, name: &str) -> (String, String) {
    (
        format!("流感医疗服务监测系统: 注册申请已收到 ({no})"),
        format!(
            "{name}:\n\n您单位的注册申请已收到, 申请编号 {no}。审核结果将通过本邮箱通知。\n\
             Your registration application {no} was received.\n\n流感医疗服务监测系统\n"
        ),
    )
}

/// Approved, with the activation link.
pub fn approved(no: &str, name: &str, username: &str, link: &str, hours: i64) -> (String, String) {
    (
        format!("流感医疗服务监测系统: 注册申请已批准 ({no})"),
        format!(
            "{name}:\n\n您单位的注册申请 {no} 已审核通过。\n\n\
             用户名 (user name): {username}\n\
             请在 {hours} 小时内打开以下一次性链接, 设置登录密码并绑定动态验证码 (TOTP):\n\n{link}\n\n\
             Open the link within {hours} hours to set your password and enrol TOTP; it works once.\n\n\
             如非本单位申请, 请忽略本邮件。\n\n流感医疗服务监测系统\n"
        ),
    )
}

/// Rejected, with the reason.
pub fn rejected(no: &str, name: &str, reason: &str, apply_url: &str) -> (String, String) {
    (
        format!("流感医疗服务监测系统: 注册申请未通过 ({no})"),
        format!(
            "{name}:\n\n您单位的注册申请 {no} 未通过审核。\n\n审核意见: {reason}\n\n\
             请按意见修改后重新提交申请: {apply_url}\n\
             The application was not approved; the reason is above. You may apply again.\n\n流感医疗服务监测系统\n"
        ),
    )
}
