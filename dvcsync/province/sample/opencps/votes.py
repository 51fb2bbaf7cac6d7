"""Citizens' ratings in the OpenCPS sample (``opencps_voting``/``opencps_votingresult``), drawn
after every dossier from a generator of their own, so adding them moved no other row of a seed.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime
from random import Random
from typing import Any

from ..calendar import DAY, to_seconds
from ..common import LEVEL_WEIGHTS, RATED_SHARE, RATING_DELAY_DAYS
from ..lifecycle import NOW
from .columns import CLERK_USER, COMPANY_ID, GROUP_ID, dt, table_row
from .schema import VIA_POSTAL_YES, VOTING_CHOICES, VOTING_CLASS, VOTING_CODE, VOTING_SUBJECT

VOTING_MODELS = {
    "opencps_voting": "org.opencps.datamgt.model.Voting",
    "opencps_votingresult": "org.opencps.datamgt.model.VotingResult",
}


def vote_rows(conn: sqlite3.Connection, seed: int) -> dict[str, list[tuple[Any, ...]]]:
    """Citizens' ratings of the returned dossiers (as the sample's: share rated by channel, a
    late dossier rated worse), from a generator of their own: one question and one answer each."""
    rng = Random(f"opencps-votes:{seed}")
    questions: list[tuple[Any, ...]] = []
    answers: list[tuple[Any, ...]] = []
    found = conn.execute(
        "SELECT dossierId, online_, viaPostal, finishDate, dueDate, applicantName, contactEmail"
        " FROM opencps_dossier WHERE dossierStatus = 'done' AND finishDate IS NOT NULL ORDER BY dossierId"
    )
    for dossier_id, online, via_postal, finished, due, name, email in found:
        channel = "truc_tuyen" if online else "buu_chinh" if via_postal == VIA_POSTAL_YES else "truc_tiep"
        if rng.random() >= RATED_SHARE.get(channel, 0.4):
            continue
        returned = to_seconds(datetime.fromisoformat(finished))
        moment = min(returned + int(rng.random() * RATING_DELAY_DAYS * DAY), NOW)
        late = due is not None and finished > due
        level = rng.choices((1, 2, 3), LEVEL_WEIGHTS[late])[0]
        number = len(questions) + 1
        base = {
            "companyId": COMPANY_ID,
            "groupId": GROUP_ID,
            "createDate": dt(moment),
            "modifiedDate": dt(moment),
        }
        questions.append(
            table_row(
                "opencps_voting",
                {
                    "uuid_": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "votingId": number,
                    **base,
                    "userId": CLERK_USER[0],
                    "userName": CLERK_USER[1],
                    "className": VOTING_CLASS,
                    "classPK": str(dossier_id),
                    "subject": VOTING_SUBJECT,
                    "choices": "###".join(VOTING_CHOICES),
                    "commentable": 1,
                    "votingCode": VOTING_CODE,
                },
            )
        )
        answers.append(
            table_row(
                "opencps_votingresult",
                {
                    "uuid_": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "votingResultId": number,
                    **base,
                    "userId": 0,
                    "userName": name,
                    "votingId": number,
                    "fullname": name,
                    "email": email,
                    "comment_": None,
                    "selected": str(level),
                },
            )
        )
    return {"opencps_voting": questions, "opencps_votingresult": answers}
