"""The OpenCPS v2 tables the sample writes, with the real schema's column names and types.

Source: ``modules/backend-dossiermgt/backend-dossiermgt-service/src/main/resources/META-INF/sql/
tables.sql`` of the public VietOpenCPS/opencps-v2 repository (Liferay Service Builder output, the
same columns on MySQL/MariaDB). Every column of the tables below is declared, in the real order,
so SQL written against a real OpenCPS database runs here unchanged. Liferay's portable types are
turned into what its MySQL dialect makes of them: ``LONG`` → ``BIGINT``, ``DATE`` → ``DATETIME``
(stored here as ``YYYY-MM-DD HH:MM:SS`` text, as MySQL returns it), ``STRING`` → ``LONGTEXT``,
``BOOLEAN`` → ``TINYINT`` (0/1). Trailing underscores (``uuid_``, ``online_``, ``password_``,
``state_``, ``public_``) are Liferay's escapes for reserved words, kept as they are.

Only ``counter`` comes from Liferay's portal schema (``name``, ``currentId``): the ids of the
tables above are drawn from it, which is why dvcsync's ``province.yaml`` has the ``counter`` id
strategy.
"""

from __future__ import annotations

import re

# Columns in tables.sql order: "name TYPE" per line, TYPE as Liferay declares it.
_COLUMNS = {
    "opencps_dossier": """
        uuid_ VARCHAR(75); dossierId LONG; groupId LONG; companyId LONG; userId LONG;
        userName VARCHAR(255); createDate DATE; modifiedDate DATE; referenceUid VARCHAR(255);
        counter LONG; registerBookCode VARCHAR(100); registerBookName VARCHAR(1024);
        dossierRegister VARCHAR(255); processNo VARCHAR(128); serviceCode VARCHAR(128);
        serviceName TEXT; govAgencyCode VARCHAR(128); govAgencyName VARCHAR(512);
        applicantName VARCHAR(500); applicantIdType VARCHAR(128); applicantIdNo VARCHAR(128);
        applicantIdDate DATE; address TEXT; cityCode VARCHAR(128); cityName VARCHAR(255);
        districtCode VARCHAR(128); districtName VARCHAR(512); wardCode VARCHAR(128);
        wardName VARCHAR(512); contactName TEXT; contactTelNo VARCHAR(128);
        contactEmail VARCHAR(255); delegateType INTEGER; delegateName VARCHAR(512);
        delegateIdNo VARCHAR(128); delegateTelNo VARCHAR(128); delegateEmail VARCHAR(255);
        delegateAddress TEXT; delegateCityCode VARCHAR(128); delegateCityName VARCHAR(512);
        delegateDistrictCode VARCHAR(128); delegateDistrictName VARCHAR(512);
        delegateWardCode VARCHAR(128); delegateWardName VARCHAR(512); documentNo VARCHAR(255);
        documentDate DATE; dossierTemplateNo VARCHAR(128); dossierTemplateName TEXT;
        dossierNote TEXT; submissionNote TEXT; applicantNote TEXT; briefNote TEXT;
        dossierNo VARCHAR(255); submitting BOOLEAN; processDate DATE; submitDate DATE;
        receiveDate DATE; dueDate DATE; extendDate DATE; releaseDate DATE; finishDate DATE;
        cancellingDate DATE; correcttingDate DATE; dossierStatus VARCHAR(255);
        dossierStatusText TEXT; dossierSubStatus VARCHAR(128); dossierSubStatusText TEXT;
        folderId LONG; dossierActionId LONG; viaPostal INTEGER; postalServiceCode VARCHAR(255);
        postalServiceName VARCHAR(1024); postalAddress TEXT; postalCityCode VARCHAR(255);
        postalCityName VARCHAR(512); postalDistrictCode VARCHAR(255);
        postalDistrictName VARCHAR(512); postalWardCode VARCHAR(255); postalWardName VARCHAR(512);
        postalTelNo VARCHAR(128); password_ VARCHAR(75); notification BOOLEAN; online_ BOOLEAN;
        original BOOLEAN; serverNo VARCHAR(255); endorsementDate DATE; lockState VARCHAR(200);
        originality INTEGER; originDossierId LONG; sampleCount LONG; durationUnit INTEGER;
        durationCount DOUBLE; dossierName VARCHAR(1000); originDossierNo VARCHAR(255);
        groupDossierId VARCHAR(75); metaData TEXT; systemId INTEGER; dossierCounter VARCHAR(128);
        vnpostalStatus INTEGER; vnpostalProfile TEXT; fromViaPostal INTEGER;
        multipleCheck VARCHAR(75)
    """,
    "opencps_dossieraction": """
        uuid_ VARCHAR(75); dossierActionId LONG; companyId LONG; groupId LONG; userId LONG;
        userName VARCHAR(255); createDate DATE; modifiedDate DATE; dossierId LONG;
        serviceProcessId LONG; previousActionId LONG; fromStepCode VARCHAR(255);
        fromStepName VARCHAR(512); fromSequenceNo VARCHAR(255); actionCode VARCHAR(100);
        actionUser VARCHAR(255); actionName VARCHAR(512); actionNote TEXT; actionOverdue INTEGER;
        syncActionCode VARCHAR(100); pending BOOLEAN; rollbackable BOOLEAN; stepCode VARCHAR(255);
        stepName VARCHAR(512); sequenceNo VARCHAR(255); dueDate DATE; nextActionId LONG;
        payload TEXT; stepInstruction VARCHAR(500); state_ INTEGER; eventStatus INTEGER
    """,
    "opencps_dossierfile": """
        uuid_ VARCHAR(75); dossierFileId LONG; groupId LONG; companyId LONG; userId LONG;
        userName VARCHAR(255); createDate DATE; modifiedDate DATE; dossierId LONG;
        referenceUid VARCHAR(75); dossierTemplateNo VARCHAR(255); dossierPartNo VARCHAR(255);
        dossierPartType INTEGER; fileTemplateNo VARCHAR(255); displayName VARCHAR(500);
        formData TEXT; fileEntryId LONG; original BOOLEAN; eForm BOOLEAN; isNew BOOLEAN;
        removed BOOLEAN; signCheck INTEGER; signInfo TEXT; formScript TEXT; formReport TEXT;
        formSchema TEXT; deliverableCode VARCHAR(255)
    """,
    "opencps_paymentfile": """
        uuid_ VARCHAR(75); paymentFileId LONG; groupId LONG; companyId LONG; userId LONG;
        userName VARCHAR(255); createDate DATE; modifiedDate DATE; dossierId LONG;
        referenceUid VARCHAR(75); govAgencyCode VARCHAR(128); govAgencyName VARCHAR(500);
        paymentFee VARCHAR(500); advanceAmount LONG; feeAmount LONG; serviceAmount LONG;
        shipAmount LONG; paymentAmount LONG; paymentNote VARCHAR(500); epaymentProfile STRING;
        bankInfo STRING; paymentStatus INTEGER; paymentMethod VARCHAR(255); confirmDatetime DATE;
        confirmPayload STRING; confirmFileEntryId LONG; confirmNote VARCHAR(75);
        approveDatetime DATE; accountUserName VARCHAR(500); govAgencyTaxNo VARCHAR(500);
        invoiceTemplateNo VARCHAR(500); invoiceIssueNo VARCHAR(500); invoiceNo VARCHAR(500);
        invoicePayload STRING; einvoice STRING; invoiceFileEntryId LONG
    """,
    "opencps_dossierstatusmapping": """
        dossierStatusMappingId LONG; groupId LONG; companyId LONG; userId LONG;
        userName VARCHAR(255); createDate DATE; modifiedDate DATE; statusCode VARCHAR(255);
        statusCodeDVCQG VARCHAR(128); subStatusCode VARCHAR(128)
    """,
    "opencps_serviceinfo": """
        uuid_ VARCHAR(75); serviceInfoId LONG; groupId LONG; companyId LONG; userId LONG;
        userName VARCHAR(255); createDate DATE; modifiedDate DATE; serviceCode VARCHAR(128);
        serviceName TEXT; processText TEXT; methodText TEXT; dossierText TEXT; conditionText TEXT;
        durationText TEXT; applicantText TEXT; resultText TEXT; regularText TEXT; feeText TEXT;
        administrationCode VARCHAR(128); administrationName VARCHAR(500);
        administrationIndex VARCHAR(128); domainCode VARCHAR(128); domainName TEXT;
        domainIndex VARCHAR(128); maxLevel INTEGER; public_ BOOLEAN; govAgencyText TEXT;
        isNotarization BOOLEAN; serviceNameTitle VARCHAR(500)
    """,
    "opencps_serviceinfomapping": """
        serviceInfoMappingId LONG; groupId LONG; companyId LONG; userId LONG;
        userName VARCHAR(255); createDate DATE; modifiedDate DATE; serviceCode VARCHAR(128);
        serviceCodeDVCQG VARCHAR(128); serviceNameDVCQG TEXT; synced INTEGER
    """,
    "opencps_processstep": """
        uuid_ VARCHAR(75); processStepId LONG; companyId LONG; groupId LONG; userId LONG;
        userName VARCHAR(255); createDate DATE; modifiedDate DATE; stepCode VARCHAR(255);
        serviceProcessId LONG; stepName VARCHAR(500); sequenceNo VARCHAR(255);
        dossierStatus VARCHAR(255); dossierSubStatus VARCHAR(255); durationCount DOUBLE;
        customProcessUrl VARCHAR(255); stepInstruction TEXT; briefNote TEXT; editable BOOLEAN;
        restrictDossier VARCHAR(255); lockState VARCHAR(255); groupName VARCHAR(255);
        roleAsStep VARCHAR(255); checkInput INTEGER
    """,
    # Citizens' ratings: a question asked about one dossier and its answers, from tables.sql of
    # backend-datamgt-service (OpenCPS's voting: className/classPK name what is rated).
    "opencps_voting": """
        uuid_ VARCHAR(75); votingId LONG; companyId LONG; groupId LONG; userId LONG;
        userName VARCHAR(255); createDate DATE; modifiedDate DATE; className VARCHAR(75);
        classPK VARCHAR(255); subject TEXT; choices TEXT; templateNo VARCHAR(255);
        commentable BOOLEAN; votingCode VARCHAR(255)
    """,
    "opencps_votingresult": """
        uuid_ VARCHAR(75); votingResultId LONG; companyId LONG; groupId LONG; userId LONG;
        userName VARCHAR(255); createDate DATE; modifiedDate DATE; votingId LONG;
        fullname VARCHAR(1024); email VARCHAR(255); comment_ TEXT; selected VARCHAR(1024)
    """,
    "counter": "name VARCHAR(75); currentId LONG",
}
PRIMARY_KEYS = {
    "opencps_dossier": "dossierId",
    "opencps_dossieraction": "dossierActionId",
    "opencps_dossierfile": "dossierFileId",
    "opencps_paymentfile": "paymentFileId",
    "opencps_dossierstatusmapping": "dossierStatusMappingId",
    "opencps_serviceinfo": "serviceInfoId",
    "opencps_serviceinfomapping": "serviceInfoMappingId",
    "opencps_processstep": "processStepId",
    "opencps_voting": "votingId",
    "opencps_votingresult": "votingResultId",
    "counter": "name",
}
# Liferay's portable types as its MySQL dialect declares them.
_MYSQL_TYPES = {"LONG": "BIGINT", "DATE": "DATETIME", "STRING": "LONGTEXT", "BOOLEAN": "TINYINT"}

COLUMNS: dict[str, tuple[str, ...]] = {}
_TYPES: dict[str, tuple[str, ...]] = {}
for _table, _text in _COLUMNS.items():
    _pairs = [item.split() for item in re.split(r";\s*", _text.strip()) if item.strip()]
    COLUMNS[_table] = tuple(name for name, _ in _pairs)
    _TYPES[_table] = tuple(_MYSQL_TYPES.get(kind, kind) for _, kind in _pairs)

# Indexes dvcsync's reads need (OpenCPS ships its own in indexes.sql; these match their intent).
INDEXES = (
    "CREATE INDEX IF NOT EXISTS IX_dossier_modified ON opencps_dossier (modifiedDate, dossierId)",
    "CREATE INDEX IF NOT EXISTS IX_dossier_no ON opencps_dossier (dossierNo)",
    "CREATE INDEX IF NOT EXISTS IX_dossier_ref ON opencps_dossier (referenceUid)",
    "CREATE INDEX IF NOT EXISTS IX_action_dossier ON opencps_dossieraction (dossierId)",
    "CREATE INDEX IF NOT EXISTS IX_file_dossier ON opencps_dossierfile (dossierId)",
    "CREATE INDEX IF NOT EXISTS IX_payment_dossier ON opencps_paymentfile (dossierId)",
    "CREATE INDEX IF NOT EXISTS IX_voting_class ON opencps_voting (className, classPK)",
    "CREATE INDEX IF NOT EXISTS IX_votingresult_voting ON opencps_votingresult (votingId)",
)


def ddl() -> str:
    """``CREATE TABLE`` statements of every table, primary keys as in tables.sql."""
    statements = []
    for table, names in COLUMNS.items():
        key = PRIMARY_KEYS[table]
        lines = [
            f"    {name} {kind}" + (" NOT NULL PRIMARY KEY" if name == key else "")
            for name, kind in zip(names, _TYPES[table], strict=True)
        ]
        statements.append(f"CREATE TABLE IF NOT EXISTS {table} (\n" + ",\n".join(lines) + "\n);")
    return "\n".join(statements) + "\n"


# ---------------------------------------------------------------- codes as OpenCPS uses them

# dossierStatus values (DossierTerm.DOSSIER_STATUS_*), by the national status index the sample's
# lifecycle uses (national code - 1).
STATUSES = (
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
STATUS_TEXT = {
    "": "",
    "new": "Mới",
    "receiving": "Đang tiếp nhận",
    "denied": "Từ chối tiếp nhận",
    "processing": "Đang xử lý",
    "waiting": "Chờ bổ sung",
    "paying": "Chờ thanh toán",
    "cancelled": "Đã rút",
    "unresolved": "Dừng xử lý",
    "releasing": "Chờ trả kết quả",
    "done": "Đã trả kết quả",
}


class Step:
    """One step of the sample's service process (``opencps_processstep``)."""

    __slots__ = ("action_code", "action_name", "code", "name", "status", "sub_status")

    def __init__(
        self, code: str, name: str, status: str, sub_status: str, action_code: str, action_name: str
    ) -> None:
        self.code, self.name, self.status, self.sub_status = code, name, status, sub_status
        self.action_code, self.action_name = action_code, action_name


# One shared process for every service (serviceProcessId 1); stepCode, stepName, the status and
# sub-status the step puts the dossier in (sub-statuses are "<status>_<n>", as OpenCPS names them),
# and the action that leads into it.
STEPS = {
    "new": Step("100", "Hồ sơ mới nộp trực tuyến", "new", "new_0", "1100", "Nộp hồ sơ"),
    "receiving": Step("200", "Tiếp nhận hồ sơ", "receiving", "receiving_1", "1200", "Tiếp nhận hồ sơ"),
    "denied": Step("210", "Từ chối tiếp nhận", "denied", "denied_1", "1300", "Từ chối tiếp nhận hồ sơ"),
    "processing": Step(
        "300", "Thụ lý, thẩm định hồ sơ", "processing", "processing_1", "2100", "Chuyển thụ lý"
    ),
    "review": Step("310", "Xem xét, trình ký", "processing", "processing_2", "2200", "Trình lãnh đạo"),
    "sign": Step("320", "Lãnh đạo ký duyệt", "processing", "processing_3", "2300", "Ký duyệt"),
    "resumed": Step(
        "330", "Tiếp nhận hồ sơ bổ sung", "processing", "processing_4", "2400", "Tiếp nhận bổ sung"
    ),
    "paid": Step(
        "340", "Đã hoàn thành nghĩa vụ tài chính", "processing", "processing_5", "2500", "Xác nhận thanh toán"
    ),
    "waiting": Step("400", "Chờ bổ sung hồ sơ", "waiting", "waiting_1", "3100", "Yêu cầu bổ sung"),
    "paying": Step(
        "500", "Chờ thực hiện nghĩa vụ tài chính", "paying", "paying_1", "3200", "Yêu cầu thanh toán"
    ),
    "cancelled": Step("700", "Rút hồ sơ", "cancelled", "cancelled_1", "4100", "Rút hồ sơ"),
    "unresolved": Step("800", "Dừng xử lý", "unresolved", "unresolved_1", "4200", "Dừng xử lý"),
    "releasing": Step("900", "Chờ trả kết quả", "releasing", "releasing_0", "5100", "Chuyển trả kết quả"),
    "done": Step("1000", "Đã trả kết quả", "done", "done_1", "5200", "Trả kết quả"),
}
# Sub-statuses the province left out of opencps_dossierstatusmapping: the national status is then
# that of the dossier's status (as DVCQGIntegrationActionImpl.getMappingStatus falls back).
UNMAPPED_SUB_STATUSES = frozenset({"processing_4", "processing_5"})

APPLICANT_TYPES = {
    "cong_dan": "citizen",
    "doanh_nghiep": "business",
    "co_quan": "business",
    "to_chuc": "business",
}
SYSTEM_PORTAL = 5  # systemId of a dossier received from the national portal
VIA_POSTAL_NONE, VIA_POSTAL_YES = 0, 2  # viaPostal: 2 = the result is posted (HinhThuc 1)
ORIGINALITY_ONLINE, ORIGINALITY_ONESTOP = 1, 3
PAYMENT_REQUESTED, PAYMENT_REPORTED, PAYMENT_CONFIRMED = 0, 1, 2  # paymentStatus
ONLINE_PAYMENT_METHODS = ("KeyPayDVCQG", "ViettelPay")
PART_SUBMITTED, PART_RESULT = 1, 2  # dossierPartType
# The satisfaction question the sample asks about a returned dossier (opencps_voting.className
# "dossier", classPK its dossierId) and its answers (opencps_votingresult.selected: 1, 2, 3).
VOTING_CLASS, VOTING_CODE = "dossier", "DANH_GIA_HAI_LONG"
VOTING_SUBJECT = "Ông/bà có hài lòng với việc giải quyết hồ sơ?"
VOTING_CHOICES = ("Rất hài lòng", "Hài lòng", "Chưa hài lòng")
