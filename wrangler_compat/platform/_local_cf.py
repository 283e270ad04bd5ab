"""``request.cf`` under ``dohost dev``: the placeholder wrangler dev gives offline.

wrangler dev (miniflare) fills ``request.cf`` of every client request with
the edge properties of the machine's location, fetched from Cloudflare, and
falls back to a fixed placeholder when it cannot fetch them. dohost never
calls out, so ``dohost dev`` always gives that placeholder — code that reads
``request.cf.city`` or ``request.js_object.cf.country`` (Cloudflare's
"Durable Object in-memory state" example does) runs as under ``wrangler dev``
offline. ``dohost serve`` is not at Cloudflare's edge and gives ``None``.
Each request gets its own copy, so code that changes it changes nothing else.
"""

from __future__ import annotations

from typing import Any

from objects import js_value

__all__ = ["local_cf"]

_TLS_CLIENT_AUTH = dict.fromkeys(
    (
        "certIssuerDN", "certSubjectDN", "certIssuerDNRFC2253", "certSubjectDNRFC2253", "certIssuerDNLegacy",
        "certSubjectDNLegacy", "certSerial", "certIssuerSerial", "certSKI", "certIssuerSKI",
        "certFingerprintSHA1", "certFingerprintSHA256", "certNotBefore", "certNotAfter",
    ),
    "",
)

# CF: cloudflare/workers-sdk packages/miniflare/src/cf.ts (fallbackCf)
_FALLBACK_CF: dict[str, Any] = {
    "asOrganization": "",
    "asn": 395747,
    "colo": "DFW",
    "city": "Austin",
    "region": "Texas",
    "regionCode": "TX",
    "metroCode": "635",
    "postalCode": "78701",
    "country": "US",
    "continent": "NA",
    "timezone": "America/Chicago",
    "latitude": "30.27130",
    "longitude": "-97.74260",
    "clientTcpRtt": 0,
    "httpProtocol": "HTTP/1.1",
    "requestPriority": "weight=192;exclusive=0",
    "tlsCipher": "AEAD-AES128-GCM-SHA256",
    "tlsVersion": "TLSv1.3",
    "tlsClientAuth": {"certPresented": "0", "certVerified": "NONE", "certRevoked": "0", **_TLS_CLIENT_AUTH},
    "edgeRequestKeepAliveStatus": 0,
    "hostMetadata": None,
    "clientTrustScore": 99,
    "botManagement": {
        "corporateProxy": False,
        "verifiedBot": False,
        "ja3Hash": "25b4882c2bcb50cd6b469ff28c596742",
        "staticResource": False,
        "detectionIds": [],
        "score": 99,
    },
}


def local_cf() -> Any:
    """A fresh copy of the placeholder, as a JS-shaped object (``cf.city``, ``cf["city"]``)."""
    return js_value(_FALLBACK_CF)
