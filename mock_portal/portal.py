"""The national portal's services (``national-portal.md`` §1–3) on the shared state.

``Portal.handle(endpoint, body, dstcode)`` is the one dispatcher both faces call (REST and SOAP),
so they share state and rules. It never raises for bad input: every refusal is a contract reply.
Batches are validated with one call (``FastValidator``: pydantic-core alone for canonical input, the
models for the rest) and stored with one ``executemany``: the portal must never be what limits a
test or a benchmark.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from dvcsync.contract import (
    REQUEST_MODELS,
    SHARE_SERVICES,
    DanhGia,
    DanhSachHoSoRequest,
    DongBoHoSoMCRequest,
    DongBoTrangThaiHoSoRequest,
    Flag,
    HoSo,
    HoSoCongDVC,
    LayThuTucRequest,
    ThongBaoKhuyenMai,
    TienDo,
    TraCuuHoSoRequest,
    XacNhanHoSoRequest,
    is_legal_move,
    now_wire,
)
from dvcsync.contract._fast import FastValidator

from . import replies as r
from .catalogue import Catalogue
from .config import MockConfig
from .faults import FORCED_EXPIRY, SESSION_TTL
from .sessions import Sessions
from .stats import Stats
from .store import Store

Reply = dict[str, Any]

# Built once; the core-only pass first, the models' own validation for whatever it refuses.
_BATCH_REQUEST: FastValidator[DongBoHoSoMCRequest] = FastValidator(DongBoHoSoMCRequest)
_HOSO_LIST: FastValidator[list[HoSo]] = FastValidator(list[HoSo])
_TIENDO_LIST: FastValidator[list[TienDo]] = FastValidator(list[TienDo])
_DANHGIA_LIST: TypeAdapter[list[DanhGia]] = TypeAdapter(list[DanhGia])
_FLAG: TypeAdapter[str] = TypeAdapter(Flag)


def _json(model: BaseModel) -> str:
    """Canonical wire JSON (``to_wire``); the serializer is called directly, half the cost of
    ``model_dump_json`` on the hot path."""
    return model.__pydantic_serializer__.to_json(model, exclude_none=True).decode("utf-8")


_SERVICE_RE = re.compile(rb'"service"\s*:\s*"DongBoHoSoMC"')

# Fields an admin edit may not replace: the key, and the history (planted through its own routes).
_NOT_PATCHABLE = {
    "MaHoSo": "it is the dossier's key",
    "QuaTrinhXuLy": "use POST .../history/{n}/duplicate or DELETE .../history/{n}",
}


class Portal:
    def __init__(
        self, config: MockConfig, store: Store, stats: Stats, sessions: Sessions, catalogue: Catalogue
    ) -> None:
        self.config = config
        self.store = store
        self.stats = stats
        self.sessions = sessions
        self.catalogue = catalogue
        self.on_seeded: Callable[[list[str]], None] = lambda codes: None
        self._handlers: dict[str, Callable[[dict[str, Any]], Reply]] = {
            "DongBoHoSoMC": self._dong_bo_ho_so,
            "CapNhatTienDoHoSoMC": self._cap_nhat_tien_do,
            "DongBoTrangThaiHoSo": self._dong_bo_trang_thai,
            "DongBoDanhGia": self._dong_bo_danh_gia,
            "TraCuuHoSo": self._tra_cuu,
            "LayThuTuc": self._lay_thu_tuc,
            "LayDanhSachTTHC": lambda body: self._ok("Thành công", self.catalogue.summaries()),
            "LayDanhMucCoQuan": lambda body: self._ok("Thành công", self.catalogue.agencies()),
            "LayDanhMucLinhVuc": lambda body: self._ok("Thành công", self.catalogue.sectors()),
            "DanhSachHoSo": self._danh_sach,
            "XacNhanHoSo": self._xac_nhan,
        }
        assert set(self._handlers) == set(REQUEST_MODELS), "every contract service has a handler"

    # ------------------------------------------------------------------ entry points

    async def handle(self, endpoint: str, body: dict[str, Any], dstcode: str | None) -> Reply:
        """The shared dispatcher: ``endpoint`` is ``auth``, ``integration`` or ``share``."""
        return self.dispatch(endpoint, body, dstcode)

    async def handle_bytes(self, endpoint: str, raw: bytes, dstcode: str | None) -> Reply:
        """The REST entry: a raw body. A valid ``DongBoHoSoMC`` batch is parsed and validated in one
        pass (``model_validate_json``); anything else, or any invalid batch, takes the general path,
        which gives the same answer with per-record errors."""
        if endpoint == "integration" and _SERVICE_RE.search(raw):
            reply = self._fast_batch(raw, dstcode)
            if reply is not None:
                code = reply.get("error_code")
                self.stats.count(
                    "DongBoHoSoMC", "ok" if code == self.config.success_code else f"error:{code}"
                )
                return reply
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            self.stats.count("auth" if endpoint == "auth" else "unknown", f"error:{r.INVALID}")
            return r.error(r.INVALID, f"Thân yêu cầu không phải JSON hợp lệ: {exc}")
        return self.dispatch(endpoint, body, dstcode)

    def dispatch(self, endpoint: str, body: Any, dstcode: str | None) -> Reply:
        service = (
            "auth"
            if endpoint == "auth"
            else (
                body.get("service")
                if isinstance(body, dict) and isinstance(body.get("service"), str)
                else "unknown"
            )
        )
        with self.store.lock:
            try:
                reply = self._dispatch(endpoint, body, dstcode)
            except Exception as exc:  # a bug of the mock must still answer in the contract's shape
                reply = r.error("99", f"Lỗi nội bộ của cổng giả lập: {type(exc).__name__}: {exc}")
                self.store.rollback()
        code = reply.get("error_code")
        self.stats.count(
            service if service in self._handlers or service == "auth" else "unknown",
            "ok" if code == self.config.success_code else f"error:{code}",
        )
        return reply

    def _fast_batch(self, raw: bytes, dstcode: str | None) -> Reply | None:
        try:
            request = _BATCH_REQUEST.validate_json(raw)
        except ValidationError:
            return None
        problem = self._access_problem(dstcode, request.session, request.madonvi)
        if problem is not None:
            return problem
        problem = self._list_problem(request.data)
        if problem is not None:
            return problem
        return self._write_batch(request.data, request.isUpdating == "True")

    def _write_batch(self, items: list[HoSo], updating: bool) -> Reply:
        with self.store.lock:
            try:
                return self._apply_dossiers(items, items, {}, updating)
            except Exception as exc:  # same guarantee as dispatch: a contract reply, never a 500
                self.store.rollback()
                return r.error("99", f"Lỗi nội bộ của cổng giả lập: {type(exc).__name__}: {exc}")

    def _dstcode_problem(self, dstcode: str | None) -> Reply | None:
        if not dstcode:
            return r.error(r.FORBIDDEN, "Thiếu header dstcode")
        if dstcode != self.config.credentials.dstcode:
            return r.error(r.FORBIDDEN, f"dstcode không hợp lệ: {dstcode!r}")
        return None

    def _access_problem(self, dstcode: str | None, session: Any, madonvi: Any) -> Reply | None:
        """dstcode, then session, then madonvi: the order every service checks them in."""
        problem = self._dstcode_problem(dstcode)
        if problem is not None or dstcode is None:
            return problem
        ttl = SESSION_TTL.get()
        why = self.sessions.check(
            session, dstcode, self.config.session_ttl_s if ttl is None else ttl, FORCED_EXPIRY.get()
        )
        if why is not None:
            return r.error(r.SESSION, why)
        if madonvi != self.config.credentials.madonvi:
            return r.error(r.FORBIDDEN, f"madonvi {madonvi!r} không khớp với tài khoản")
        return None

    def _dispatch(self, endpoint: str, body: Any, dstcode: str | None) -> Reply:
        if endpoint not in ("auth", "integration", "share"):
            return r.error(r.UNKNOWN_SERVICE, f"Đường dẫn không tồn tại: {endpoint}")
        problem = self._dstcode_problem(dstcode)
        if problem is not None or dstcode is None:
            return problem or r.error(r.FORBIDDEN, "Thiếu header dstcode")
        if not isinstance(body, dict):
            return r.error(r.INVALID, f"Thân yêu cầu phải là một đối tượng JSON, nhận {type(body).__name__}")
        if endpoint == "auth":
            return self._login(body, dstcode)
        service = body.get("service")
        if not isinstance(service, str) or not service:
            return r.error(r.INVALID, "Thiếu trường service")
        handler = self._handlers.get(service)
        if handler is None:
            return r.error(r.UNKNOWN_SERVICE, f"Dịch vụ không tồn tại: {service!r}")
        expected = "share" if service in SHARE_SERVICES else "integration"
        if endpoint != expected:
            return r.error(r.UNKNOWN_SERVICE, f"Dịch vụ {service} phải gọi qua đường dẫn {expected}")
        return self._access_problem(dstcode, body.get("session"), body.get("madonvi")) or handler(body)

    # ------------------------------------------------------------------ helpers

    def _ok(self, message: str, result: list[Any] | None = None, **extra: Any) -> Reply:
        reply: Reply = {"error_code": self.config.success_code, "message": message}
        if result is not None:
            reply["result"] = result
        reply.update(extra)
        return reply

    def _batch_reply(self, results: list[dict[str, Any]], done: str) -> Reply:
        failed = [item for item in results if item["error_code"] != self.config.success_code]
        if not failed:
            return self._ok(f"{done} {len(results)}/{len(results)} bản ghi", results)
        return r.error(
            failed[0]["error_code"],
            f"{len(failed)}/{len(results)} bản ghi lỗi; đầu tiên: {failed[0]['message']}",
            results,
        )

    def _item(self, code: str, error_code: str | int, message: str) -> dict[str, Any]:
        return {"MaHoSo": code, "error_code": error_code, "message": message}

    def _check_list(self, body: dict[str, Any]) -> tuple[list[Any] | None, Reply | None]:
        data = body.get("data")
        if not isinstance(data, list):
            return None, r.error(r.INVALID, f"data phải là danh sách, nhận {type(data).__name__}")
        problem = self._list_problem(data)
        return (None, problem) if problem is not None else (data, None)

    def _list_problem(self, data: list[Any]) -> Reply | None:
        if not data:
            return r.error(r.INVALID, "data rỗng: không có bản ghi nào")
        if len(data) > self.config.batch_limit:
            return r.error(
                r.BATCH_LIMIT,
                f"Vượt giới hạn {self.config.batch_limit} bản ghi mỗi lần gọi (nhận {len(data)})",
            )
        return None

    def _validate_items(
        self, data: list[Any], adapter: FastValidator[Any], model: type[BaseModel]
    ) -> tuple[list[Any], dict[int, str]]:
        """One validation call for the whole list; on failure, errors grouped by item."""
        try:
            return adapter.validate_python(data), {}
        except ValidationError as exc:
            bad = {err["loc"][0] for err in exc.errors() if err.get("loc") and isinstance(err["loc"][0], int)}
        items: list[Any] = []
        errors: dict[int, str] = {}
        for index, raw in enumerate(data):
            if index not in bad:
                items.append(model.model_validate(raw))
                continue
            items.append(None)
            try:
                model.model_validate(raw)
            except ValidationError as exc:
                errors[index] = r.describe(exc, r.record_name(raw, index))
        return items, errors

    def _validate(self, service: str, body: dict[str, Any]) -> tuple[Any, Reply | None]:
        try:
            return REQUEST_MODELS[service].model_validate(body), None
        except ValidationError as exc:
            return None, r.error(r.INVALID, r.describe(exc))

    def _move_problem(self, code: str, old: str, new: str, service: str) -> str | None:
        """Strict: a message refusing the move; lenient: None after recording a warning."""
        if is_legal_move(old, new):
            return None
        text = f"Hồ sơ {code}: chuyển trạng thái không hợp lệ {old} → {new}"
        if self.config.strict:
            return text
        self.store.add_warning(code, service, text + " (chấp nhận ở chế độ lenient)")
        return None

    # ------------------------------------------------------------------ services

    def _login(self, body: dict[str, Any], dstcode: str) -> Reply:
        creds = self.config.credentials
        if body.get("username") != creds.username or body.get("password") != creds.password:
            return r.error(r.SESSION, "Sai tên đăng nhập hoặc mật khẩu")
        return {
            "error_code": self.config.success_code,
            "session": self.sessions.issue(dstcode),
            "message": "Đăng nhập thành công",
        }

    def _dong_bo_ho_so(self, body: dict[str, Any]) -> Reply:
        data, problem = self._check_list(body)
        if problem is not None or data is None:
            return problem or r.error(r.INVALID, "data")
        try:
            updating = _FLAG.validate_python(body.get("isUpdating", "False")) == "True"
        except ValidationError:
            return r.error(r.INVALID, f"isUpdating = {body.get('isUpdating')!r}: phải là 'True' hoặc 'False'")
        items, errors = self._validate_items(data, _HOSO_LIST, HoSo)
        return self._apply_dossiers(items, data, errors, updating)

    def _apply_dossiers(
        self, items: Sequence[HoSo | None], data: list[Any], errors: dict[int, str], updating: bool
    ) -> Reply:
        """Create or replace the valid ``items``; ``errors`` (by index) answer the invalid ones."""
        known = self.store.statuses(item.MaHoSo for item in items if item is not None)
        ok = self.config.success_code
        results: list[dict[str, Any]] = []
        creates: list[tuple[str, str, str]] = []
        replaces: list[tuple[str, str, str]] = []
        for index, item in enumerate(items):
            if item is None:
                results.append(self._item(r.record_name(data[index], index), r.INVALID, errors[index]))
                continue
            code, status = item.MaHoSo, item.TrangThaiHoSo
            if not updating:
                if code in known:
                    results.append(self._item(code, r.EXISTS, f"Hồ sơ {code} đã tồn tại"))
                    continue
                known[code] = status
                creates.append((code, status, _json(item)))
                results.append(self._item(code, ok, "Đã tạo"))
                continue
            if code not in known:
                results.append(
                    self._item(code, r.NOT_FOUND, f"Hồ sơ {code} không tồn tại, không thể cập nhật")
                )
                continue
            move = self._move_problem(code, known[code], status, "DongBoHoSoMC")
            if move is not None:
                results.append(self._item(code, r.ILLEGAL_MOVE, move))
                continue
            known[code] = status
            replaces.append((code, status, _json(item)))
            results.append(self._item(code, ok, "Đã cập nhật"))
        self.store.insert_dossiers(creates)
        self.store.replace_dossiers(replaces)
        self.store.commit()
        return self._batch_reply(results, "Đồng bộ thành công")

    def _cap_nhat_tien_do(self, body: dict[str, Any]) -> Reply:
        data, problem = self._check_list(body)
        if problem is not None or data is None:
            return problem or r.error(r.INVALID, "data")
        items, errors = self._validate_items(data, _TIENDO_LIST, TienDo)
        known = self.store.statuses(item.MaHoSo for item in items if item is not None)
        ok = self.config.success_code
        results: list[dict[str, Any]] = []
        entries: list[tuple[str, str]] = []
        for index, item in enumerate(items):
            if item is None:
                results.append(self._item(r.record_name(data[index], index), r.INVALID, errors[index]))
            elif item.MaHoSo not in known:
                results.append(
                    self._item(
                        item.MaHoSo,
                        r.NOT_FOUND,
                        f"Hồ sơ {item.MaHoSo} không tồn tại: hãy đồng bộ hồ sơ trước",
                    )
                )
            else:
                entries.append((item.MaHoSo, _json(item)))
                results.append(self._item(item.MaHoSo, ok, "Đã ghi tiến độ"))
        self.store.append_history(entries)
        self.store.commit()
        return self._batch_reply(results, "Cập nhật tiến độ thành công")

    def _dong_bo_trang_thai(self, body: dict[str, Any]) -> Reply:
        request, problem = self._validate("DongBoTrangThaiHoSo", body)
        if problem is not None:
            return problem
        assert isinstance(request, DongBoTrangThaiHoSoRequest)
        if request.type != "2":
            return r.error(r.INVALID, f"type = {request.type!r}: chỉ hỗ trợ type 2 (hồ sơ nộp trên Cổng)")
        data = request.data
        current = self.store.portal_dossier(data.MaHoSo)
        if current is None:
            return r.error(r.NOT_FOUND, f"Hồ sơ {data.MaHoSo} không phải hồ sơ nộp trên Cổng DVC quốc gia")
        # The province's first report may carry any status (it may report only the outcome);
        # later reports, and any after a portal-side withdrawal, must be legal moves.
        first = not current["status_reports"] and current["status"] == "1"
        move = (
            None
            if first
            else self._move_problem(data.MaHoSo, current["status"], data.TrangThai, "DongBoTrangThaiHoSo")
        )
        if move is not None:
            return r.error(r.ILLEGAL_MOVE, move)
        self.store.record_portal_status(data.MaHoSo, data.TrangThai, _json(data), data.MaHoSoDonVi)
        self.store.commit()
        return self._ok("Đã cập nhật trạng thái hồ sơ")

    def _dong_bo_danh_gia(self, body: dict[str, Any]) -> Reply:
        data, problem = self._check_list(body)
        if problem is not None or data is None:
            return problem or r.error(r.INVALID, "data")
        try:
            items = _DANHGIA_LIST.validate_python(data)
        except ValidationError as exc:
            return r.error(r.INVALID, r.describe(exc))
        # Replacement semantics (a choice): figures are keyed by month, procedure and agency, and a
        # second send of a key is the province's correction, so it replaces the first.
        keyed = [((i.NgayTongHop, i.MaThuTuc or "", i.Madonvi or ""), _json(i)) for i in items]
        replaced = self.store.replace_ratings(keyed)
        self.store.commit()
        return self._ok(f"Đã nhận {len(items)} bản tổng hợp đánh giá ({replaced} bản thay thế)")

    def _tra_cuu(self, body: dict[str, Any]) -> Reply:
        request, problem = self._validate("TraCuuHoSo", body)
        if problem is not None:
            return problem
        assert isinstance(request, TraCuuHoSoRequest)
        stored = self.store.dossier(request.mahoso)
        if stored is None:
            # (choice) a dossier submitted on the portal is found too, with its current status:
            # a province reading back before it reports a status must see what was reported
            portal = self.store.portal_dossier(request.mahoso)
            if portal is None:
                return self._ok("Không tìm thấy hồ sơ", [])
            body = dict(portal["body"])
            body["TrangThaiHoSo"] = portal["status"]
            if portal["MaHoSoDonVi"]:
                body["MaHoSoDonVi"] = portal["MaHoSoDonVi"]
            body["QuaTrinhXuLy"] = []
            return self._ok("Thành công", [body])
        dossier = stored["body"]
        dossier["QuaTrinhXuLy"] = self.store.history_of(request.mahoso)
        return self._ok("Thành công", [dossier])

    def _lay_thu_tuc(self, body: dict[str, Any]) -> Reply:
        request, problem = self._validate("LayThuTuc", body)
        if problem is not None:
            return problem
        assert isinstance(request, LayThuTucRequest)
        item = self.catalogue.procedure(request.maTTHC)
        if item is None:
            return self._ok(f"Không tìm thấy thủ tục {request.maTTHC}", [])
        return self._ok("Thành công", [item])

    def _danh_sach(self, body: dict[str, Any]) -> Reply:
        request, problem = self._validate("DanhSachHoSo", body)
        if problem is not None:
            return problem
        assert isinstance(request, DanhSachHoSoRequest)
        try:
            page, size = int(request.trang), int(request.sobanghi)
        except ValueError:
            page = size = 0
        if page < 1 or not 1 <= size <= 1000:
            return r.error(
                r.INVALID,
                f"trang = {request.trang!r}, sobanghi = {request.sobanghi!r}:"
                " trang ≥ 1 và 1 ≤ sobanghi ≤ 1000",
            )
        status = body.get("trangthai")
        if status not in (None, ""):
            return self._ok("Thành công", self._in_status(str(status), request, (page - 1) * size, size))
        items = self.store.unacknowledged(request.tungay, request.denngay, (page - 1) * size, size)
        return self._ok("Thành công", items)

    def _in_status(self, status: str, request: DanhSachHoSoRequest, offset: int, limit: int) -> list[Any]:
        """(choice) ``DanhSachHoSo`` with ``trangthai``: the portal's own dossiers in that status,
        acknowledged or not, with ``TrangThaiHoSo`` (and ``MaHoSoDonVi`` once known). It is how a
        province learns that a citizen withdrew (7) a dossier submitted on the portal, which
        ``TraCuuHoSo`` does not return."""
        sql = "SELECT body, status, ma_ho_so_don_vi FROM portal_dossiers WHERE status = ?"
        params: list[Any] = [status]
        if request.tungay:
            sql += " AND ngay_nop >= ?"
            params.append(request.tungay)
        if request.denngay:
            sql += " AND ngay_nop <= ?"
            params.append(request.denngay)
        sql += " ORDER BY ngay_nop, ma_ho_so LIMIT ? OFFSET ?"
        out = []
        for body, current, local in self.store._rows(sql, (*params, limit, offset)):
            item = json.loads(body)
            item["TrangThaiHoSo"] = current
            if local:
                item["MaHoSoDonVi"] = local
            out.append(item)
        return out

    def _xac_nhan(self, body: dict[str, Any]) -> Reply:
        request, problem = self._validate("XacNhanHoSo", body)
        if problem is not None:
            return problem
        assert isinstance(request, XacNhanHoSoRequest)
        if self.store.portal_dossier(request.mahoso) is None:
            return r.error(r.NOT_FOUND, f"Hồ sơ {request.mahoso} không phải hồ sơ nộp trên Cổng DVC quốc gia")
        self.store.acknowledge(request.mahoso, request.mahosodonvi)
        self.store.commit()
        return self._ok(f"Đã xác nhận hồ sơ {request.mahoso}")

    # ------------------------------------------------------------------ portal-side actions (admin)

    def seed_portal_dossiers(self, items: list[Any], push: bool, skip_known: bool = False) -> list[str]:
        with self.store.lock:
            return self._seed(items, push, skip_known)

    def _seed(self, items: list[Any], push: bool, skip_known: bool = False) -> list[str]:
        """Dossiers "submitted on the portal". A body with ``TenThuongNhan`` is a promotion
        notification (listed, and POSTed to the province when ``push``); others are ``HoSoCongDVC``.
        Raises ValueError naming the record and field when one is invalid (nothing is stored then).
        A code already seeded is refused, or skipped with ``skip_known`` (start-up seeding)."""
        prepared: list[tuple[str, str, str, str | None, str]] = []
        seen: set[str] = set()
        for index, raw in enumerate(items):
            name = r.record_name(raw, index)
            try:
                if isinstance(raw, dict) and "TenThuongNhan" in raw:
                    promo = ThongBaoKhuyenMai.model_validate(raw)
                    listing = self._promotion_listing(promo)
                    pushed = _json(promo) if push else None
                    kind = "promotion"
                else:
                    listing = HoSoCongDVC.model_validate(raw)
                    pushed, kind = None, "dossier"
            except ValidationError as exc:
                raise ValueError(r.describe(exc, name)) from None
            code = listing.MaHoSo
            if skip_known and self.store.portal_dossier(code) is not None:
                continue
            if code in seen or self.store.portal_dossier(code) is not None:
                raise ValueError(f"Hồ sơ {code} đã tồn tại")
            seen.add(code)
            prepared.append((code, kind, _json(listing), pushed, listing.NgayNopHoSo))
        for code, kind, body, pushed, ngay_nop in prepared:
            self.store.insert_portal_dossier(code, kind, body, pushed, ngay_nop)
        self.store.commit()
        codes = [p[0] for p in prepared]
        self.on_seeded([p[0] for p in prepared if p[3] is not None])
        return codes

    def _promotion_listing(self, promo: ThongBaoKhuyenMai) -> HoSoCongDVC:
        procedure = self.catalogue.procedure(promo.MaTTHC)
        title = promo.TenChuongTrinhKhuyenMai or promo.SoVanBan or ""
        return HoSoCongDVC.model_validate(
            {
                "MaHoSo": promo.MaHoSo,
                "MaTTHC": promo.MaTTHC,
                "TenTTHC": procedure["TENTTHC"] if procedure else "Thông báo hoạt động khuyến mại",
                "ChuHoSo": promo.TenThuongNhan,
                "LoaiDoiTuong": "2",
                "SoGiayToChuHoSo": promo.MaSoThue,
                "Email": promo.Email,
                "SoDienThoai": promo.DienThoai,
                "TrichYeuHoSo": f"Thông báo hoạt động khuyến mại: {title}"[:1000],
                "NgayNopHoSo": promo.NgayNopHoSo,
                "TaiLieuNop": [
                    {"TepDinhKemId": f"{promo.MaHoSo}-{i + 1}", "TenTepDinhKem": doc.TenTepDinhKem}
                    for i, doc in enumerate(promo.TaiLieuNop or [])
                ],
            }
        )

    def withdraw(self, code: str) -> str | None:
        """The citizen withdraws on the portal (status 7). None when done, else why not."""
        with self.store.lock:
            return self._withdraw(code)

    def _withdraw(self, code: str) -> str | None:
        stored = self.store.dossier(code)
        if stored is not None:
            if not is_legal_move(stored["status"], "7") or stored["status"] == "7":
                return f"Hồ sơ {code} ở trạng thái {stored['status']}: không thể rút"
            body = stored["body"]
            body["TrangThaiHoSo"] = "7"
            self.store.set_status(code, "7", json.dumps(body, ensure_ascii=False))
            entry = {
                "MaHoSo": code,
                "NguoiXuLy": "Công dân",
                "ThoiDiemXuLy": now_wire(),
                "NoiDungXuLy": "Công dân yêu cầu rút hồ sơ trên Cổng DVC quốc gia",
                "TrangThai": "7",
            }
            self.store.add_history_entry(code, json.dumps(entry, ensure_ascii=False))
            self.store.commit()
            return None
        portal = self.store.portal_dossier(code)
        if portal is None:
            return f"Hồ sơ {code} không tồn tại"
        if not is_legal_move(portal["status"], "7") or portal["status"] == "7":
            return f"Hồ sơ {code} ở trạng thái {portal['status']}: không thể rút"
        report = {
            "MaHoSo": code,
            "NoiDung": "Công dân yêu cầu rút hồ sơ",
            "NgayXuLy": now_wire(),
            "TrangThai": "7",
            "NguonCapNhat": "CongDVCQG",
        }
        self.store.record_portal_status(code, "7", json.dumps(report, ensure_ascii=False), None)
        self.store.commit()
        return None

    # ------------------------------------------------------------------ planted mismatches (admin)
    # The portal's own data going wrong (an operator edit, a lost record, a double write), for
    # reconciliation tests. None of these is a client write: ``writes`` stay what clients did, each
    # edit is logged in ``admin_edits``. LookupError: unknown dossier or entry; ValueError: bad input.

    def admin_patch(self, code: str, fields: Any) -> None:
        """Replace wire fields of the stored body (``null`` removes one). The result must still be a
        valid ``HoSo``, so TraCuuHoSo answers something a client can read; move rules do not apply."""
        if not isinstance(fields, dict) or not fields:
            raise ValueError(
                'body must be a non-empty JSON object of wire fields, e.g. {"TrangThaiHoSo": "5"}'
            )
        for name, why in _NOT_PATCHABLE.items():
            if name in fields:
                raise ValueError(f"{name} cannot be edited: {why}")
        with self.store.lock:
            stored = self.store.dossier(code)
            if stored is None:
                raise LookupError(f"dossier {code} not stored")
            body = stored["body"]
            unknown = sorted(k for k in fields if k not in HoSo.model_fields and k not in body)
            if unknown:
                raise ValueError(
                    f"unknown field {', '.join(unknown)}: neither a HoSo field nor in the stored body"
                )
            for name, value in fields.items():
                if value is None:
                    body.pop(name, None)
                else:
                    body[name] = value
            try:
                item = HoSo.model_validate(body)
            except ValidationError as exc:
                raise ValueError(r.describe(exc, code)) from None
            self.store.set_status(code, item.TrangThaiHoSo, _json(item))
            self.store.add_admin_edit("dossier", code, {"action": "patch", "fields": fields})
            self.store.commit()

    def admin_delete(self, code: str) -> dict[str, Any]:
        """The portal loses the dossier and its history; a later create makes it anew."""
        with self.store.lock:
            stored = self.store.dossier(code)
            if stored is None:
                raise LookupError(f"dossier {code} not stored")
            lost = {
                "action": "delete",
                "TrangThaiHoSo": stored["status"],
                "history": len(self.store.history_rows(code)),
                "writes": stored["writes"],
            }
            self.store.delete_dossier(code)
            self.store.add_admin_edit("dossier", code, lost)
            self.store.commit()
            return lost

    def admin_duplicate_history(self, code: str, n: int) -> None:
        """Entry ``n`` stored once more, appended last, as a blind re-send after a lost answer is."""
        with self.store.lock:
            _, body = self._history_row(code, n)
            self.store.add_history_entry(code, body)
            self.store.add_admin_edit("dossier", code, {"action": "duplicate-history", "entry": n})
            self.store.commit()

    def admin_drop_history(self, code: str, n: int) -> None:
        """Entry ``n`` lost; later entries move up one place."""
        with self.store.lock:
            row_id, _ = self._history_row(code, n)
            self.store.delete_history_row(row_id)
            self.store.add_admin_edit("dossier", code, {"action": "drop-history", "entry": n})
            self.store.commit()

    def _history_row(self, code: str, n: int) -> tuple[int, str]:
        if self.store.dossier(code) is None:
            raise LookupError(f"dossier {code} not stored")
        rows = self.store.history_rows(code)
        if not 1 <= n <= len(rows):
            raise LookupError(f"dossier {code} has {len(rows)} history entries: no entry {n}")
        return rows[n - 1]
