"""Schema of the sample one-stop database (SQLite), shaped like a real provincial system.

Deliberately *not* in the portal's vocabulary: local status keywords, local procedure codes,
owner-type and channel keywords, ISO 8601 local times. The mappings in ``mappings/`` do the work.
Names fixed by DESIGN.md (tools outside the package rely on them): ``id INTEGER PRIMARY KEY``
everywhere, children reference ``ho_so_id``, ``ho_so.so_ho_so`` (→ ``MaHoSo``), ``ho_so.trang_thai``,
``ho_so.updated_at`` (moves whenever the dossier or a child row changes), and the step columns
``can_bo``, ``noi_dung``, ``trang_thai``, ``thoi_diem``.
"""

from __future__ import annotations

# Local status keywords, in the order of their national codes 1..10 (see mappings/codes/statuses.yaml).
STATUS_KEYWORDS = (
    "new",
    "receiving",
    "denied",
    "processing",
    "waiting",
    "paying",
    "cancelled",
    "unresolved",
    "releasing",
    "done",
)
OWNER_TYPES = ("cong_dan", "doanh_nghiep", "co_quan", "to_chuc")
CHANNELS = ("truc_tiep", "truc_tuyen", "buu_chinh")
DELIVERY = ("tai_quay", "buu_dien")
FEE_KINDS = ("phi", "le_phi")
FEE_COLLECTION = ("thu_truoc", "thu_sau", "mien_phi")
PAYMENT_STATES = ("created", "paid", "failed")
DOCUMENT_KINDS = ("nop", "ket_qua")
ORIGINS = ("mot_cua", "dvcqg")
# Citizens' ratings of a returned dossier: the three levels of DongBoDanhGia, best first.
RATING_LEVELS = ("rat_hai_long", "hai_long", "chua_hai_long")

DDL = """
CREATE TABLE IF NOT EXISTS don_vi (
    id            INTEGER PRIMARY KEY,
    ma_don_vi     TEXT NOT NULL UNIQUE,      -- local agency key used by ho_so.ma_don_vi
    ten_don_vi    TEXT NOT NULL,
    cap           TEXT NOT NULL,             -- tinh | so | huyen | xa
    hieu_luc_tu   TEXT,                      -- ISO date
    hieu_luc_den  TEXT,                      -- ISO date; NULL = still exists
    ma_ke_thua    TEXT                       -- ma_don_vi of the successor after a merger
);
CREATE TABLE IF NOT EXISTS thu_tuc (
    id              INTEGER PRIMARY KEY,
    ma_thu_tuc      TEXT NOT NULL UNIQUE,    -- local procedure code
    ten_thu_tuc     TEXT NOT NULL,
    ma_tthc_qg      TEXT,                    -- national code where known (NULL when not mapped yet)
    ma_linh_vuc     TEXT,
    ten_linh_vuc    TEXT,
    so_ngay_xu_ly   INTEGER,
    chua_xac_minh   INTEGER NOT NULL DEFAULT 0,  -- 1: national code not verified against the portal
    updated_at      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ho_so (
    id               INTEGER PRIMARY KEY,
    so_ho_so         TEXT NOT NULL UNIQUE,   -- local dossier number → MaHoSo
    ma_thu_tuc       TEXT NOT NULL,          -- local procedure code (thu_tuc.ma_thu_tuc)
    chu_ho_so        TEXT NOT NULL,          -- owner's name
    loai_chu_ho_so   TEXT NOT NULL,          -- cong_dan | doanh_nghiep | co_quan | to_chuc
    so_giay_to       TEXT,                   -- ID number / tax code (personal data)
    dien_thoai       TEXT,                   -- personal data
    email            TEXT,                   -- personal data
    dia_chi          TEXT,
    kenh_nop         TEXT NOT NULL,          -- truc_tiep | truc_tuyen | buu_chinh
    trich_yeu        TEXT,
    ngay_nop         TEXT,                   -- ISO 8601 local time
    ngay_tiep_nhan   TEXT,
    ngay_hen_tra     TEXT,
    ngay_ket_thuc    TEXT,                   -- processing finished
    ngay_tra         TEXT,                   -- result returned
    ngay_tu_choi     TEXT,                   -- refused / stopped
    trang_thai       TEXT NOT NULL,          -- local status keyword
    ma_don_vi        TEXT NOT NULL,          -- processing agency (don_vi.ma_don_vi)
    hinh_thuc_nhan   TEXT,                   -- tai_quay | buu_dien
    nguon            TEXT NOT NULL DEFAULT 'mot_cua',  -- mot_cua | dvcqg (submitted on the portal)
    ma_ho_so_qg      TEXT,                   -- the portal's MaHoSo of a portal-submitted dossier
    ghi_chu          TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_ho_so_updated ON ho_so (updated_at, id);
-- a portal-submitted dossier is found by the portal's code (pull, withdrawals): without this each
-- lookup read the whole table (a first pull of 8,371 dossiers over 50,000 took 6.5 min)
CREATE INDEX IF NOT EXISTS ix_ho_so_ma_ho_so_qg ON ho_so (ma_ho_so_qg);
CREATE TABLE IF NOT EXISTS qua_trinh_xu_ly (
    id          INTEGER PRIMARY KEY,
    ho_so_id    INTEGER NOT NULL REFERENCES ho_so(id),
    thu_tu      INTEGER NOT NULL,            -- 1, 2, ... within the dossier
    can_bo      TEXT NOT NULL,               -- officer who acted
    chuc_danh   TEXT,
    phong_ban   TEXT,
    noi_dung    TEXT NOT NULL,
    trang_thai  TEXT NOT NULL,               -- local status keyword after the step
    thoi_diem   TEXT NOT NULL,               -- ISO 8601 local time
    bat_dau     TEXT,
    han_xu_ly   TEXT,
    UNIQUE (ho_so_id, thu_tu)
);
CREATE INDEX IF NOT EXISTS ix_qtxl_ho_so ON qua_trinh_xu_ly (ho_so_id);
CREATE TABLE IF NOT EXISTS le_phi (
    id              INTEGER PRIMARY KEY,
    ho_so_id        INTEGER NOT NULL REFERENCES ho_so(id),
    ma_phi          TEXT,
    ten_phi         TEXT NOT NULL,
    loai_phi        TEXT NOT NULL,           -- phi | le_phi
    hinh_thuc_thu   TEXT NOT NULL,           -- thu_truoc | thu_sau | mien_phi
    so_tien         INTEGER NOT NULL,        -- whole VND
    da_thanh_toan   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_le_phi_ho_so ON le_phi (ho_so_id);
CREATE TABLE IF NOT EXISTS thanh_toan (
    id                 INTEGER PRIMARY KEY,
    ho_so_id           INTEGER NOT NULL REFERENCES ho_so(id),
    ma_tham_chieu      TEXT NOT NULL UNIQUE, -- MaThamChieu of this attempt
    so_tien            INTEGER NOT NULL,
    trang_thai         TEXT NOT NULL,        -- created | paid | failed
    ma_giao_dich       TEXT,
    ngan_hang          TEXT,
    thoi_gian_tao      TEXT NOT NULL,
    thoi_gian_ket_qua  TEXT,
    bien_lai           TEXT                  -- path of the saved e-receipt
);
CREATE INDEX IF NOT EXISTS ix_thanh_toan_ho_so ON thanh_toan (ho_so_id);
CREATE TABLE IF NOT EXISTS tai_lieu (
    id              INTEGER PRIMARY KEY,
    ho_so_id        INTEGER NOT NULL REFERENCES ho_so(id),
    loai            TEXT NOT NULL,           -- nop (submitted) | ket_qua (result)
    ten_tep         TEXT NOT NULL,
    ma_thanh_phan   TEXT,                    -- component code; often empty
    duong_dan       TEXT,                    -- URL the portal downloads from
    so_hoa          INTEGER NOT NULL DEFAULT 0,
    da_xoa          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_tai_lieu_ho_so ON tai_lieu (ho_so_id);
CREATE TABLE IF NOT EXISTS danh_gia (
    id          INTEGER PRIMARY KEY,
    ho_so_id    INTEGER NOT NULL UNIQUE REFERENCES ho_so(id),  -- one rating a dossier, changed in place
    muc_do      TEXT NOT NULL,               -- rat_hai_long | hai_long | chua_hai_long
    thoi_diem   TEXT NOT NULL,               -- ISO 8601 local time the citizen rated: its month counts
    y_kien      TEXT,                        -- the citizen's comment, if any
    updated_at  TEXT NOT NULL                -- moves when the citizen changes the rating
);
CREATE INDEX IF NOT EXISTS ix_danh_gia_thoi_diem ON danh_gia (thoi_diem);
"""
