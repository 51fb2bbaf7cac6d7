"""Catalogue services, and consistency with the sample one-stop system's national codes."""

from __future__ import annotations

import json
from pathlib import Path

from dvcsync.contract import (
    LayDanhMucCoQuanReply,
    LayDanhMucLinhVucReply,
    LayDanhSachTTHCReply,
    LayThuTucReply,
)
from mock_portal.catalogue import Catalogue

from .support import PortalClient

SAMPLE = Path(__file__).resolve().parents[3] / "dvcsync" / "province" / "sample" / "data" / "procedures.json"


def test_catalogue_contains_every_national_code_of_the_sample() -> None:
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))["procedures"]
    wanted = {p["ma_tthc_qg"] for p in sample if p["ma_tthc_qg"]}
    assert wanted, "the sample names national codes"
    missing = wanted - Catalogue.load().codes
    assert not missing, f"catalogue lacks sample codes {sorted(missing)}"


def test_list_of_procedures(portal: PortalClient) -> None:
    reply = LayDanhSachTTHCReply.model_validate(portal.call("LayDanhSachTTHC", endpoint="share"))
    assert reply.ok and reply.result is not None and len(reply.result) >= 50
    assert len({item.MATTHC for item in reply.result}) == len(reply.result)


def test_one_procedure_with_sectors_channels_times_fees(portal: PortalClient) -> None:
    reply = LayThuTucReply.model_validate(portal.call("LayThuTuc", maTTHC="1.004873"))
    assert reply.result is not None
    (item,) = reply.result
    assert item.TENTTHC.startswith("Cấp Giấy xác nhận tình trạng hôn nhân")
    assert item.LINHVUCTHUCHIEN[0].MALINHVUC == "TP-HT"
    assert {c.KENH for c in item.CACHTHUCTHUCHIEN} == {"1", "2", "3"}
    assert item.CACHTHUCTHUCHIEN[0].THOIGIAN[0].PHILEPHI[0].SOTIEN == "5000"
    assert item.THANHPHANHOSO[0].GIAYTO and item.KETQUATHUCHIEN and item.COQUANTHUCHIEN


def test_localised_and_unknown_codes(portal: PortalClient) -> None:
    local = portal.call("LayThuTuc", maTTHC="1.001193.000.00.00.H40")["result"]
    assert local[0]["MATTHC"] == "1.001193"
    assert portal.call("LayThuTuc", maTTHC="9.999999")["result"] == []
    assert portal.call("LayThuTuc")["error_code"] == "1"


def test_agencies_and_sectors(portal: PortalClient) -> None:
    agencies = LayDanhMucCoQuanReply.model_validate(portal.call("LayDanhMucCoQuan", endpoint="share"))
    sectors = LayDanhMucLinhVucReply.model_validate(portal.call("LayDanhMucLinhVuc", endpoint="share"))
    assert agencies.result and any(a.MADONVI == "000.00.01.H40" for a in agencies.result)
    assert sectors.result and {"TP-HT", "CT-TM"} <= {s.MALINHVUC for s in sectors.result}
