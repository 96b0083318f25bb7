//! TOTP for the DMZ's pages: the shared implementation (RFC 6238, see
//! `flumon_shared::auth::totp`) and the enrolment QR code as inline SVG.
//!
//! ```text
//!  otpauth:// URI (shared) ──▶ qr_svg ──▶ <svg> in the activation page (no external request)
//! ```

pub use flumon_shared::auth::totp::*;

/// The QR code of `data` as an inline `<svg>` element (no XML declaration).
pub fn qr_svg(data: &str) -> Result<String, String> {
    let code =
        qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M).map_err(|e| e.to_string())?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    Ok(match svg.find("<svg") {
        Some(i) => svg.get(i..).unwrap_or_default().to_owned(),
        None => svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_and_qr() {
        let uri = otpauth_uri("flumon 流感监测", "12110105MB0000001X", b"12345678901234567890");
        assert!(uri.starts_with("otpauth://totp/flumon%20%E6%B5%81"), "{uri}");
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<path"));
    }
}
