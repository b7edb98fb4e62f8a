"""Settings from the environment (prefix ``ODR_``), with embedded defaults under the data folder."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ODR_", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str = ""
    secret_key: str = ""
    public_url: str = "http://127.0.0.1:8000"
    # Several processes (odr.cluster): Redis, and the address the other processes reach this
    # one at (e.g. "http://10.0.0.5:8000", "http://app1:8000"); both or neither, and only on
    # PostgreSQL (processes on SQLite would each hold their own write lock and draft writer).
    redis_url: str = ""
    node_url: str = ""
    redis_prefix: str = "odr"
    # A live room or draft belongs to one process for this long unless renewed (every third of
    # it); a killed owner's rooms move to another process at most this long after its death,
    # sooner when its address refuses connections.
    owner_lease_seconds: float = Field(default=10, ge=1)

    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_sender: str = "ODR <no-reply@odr.local>"

    default_language: str = "ru"
    default_timezone: str = "Asia/Almaty"
    session_days: int = 14
    invitation_days: int = 7
    # Failed logins tolerated within the window before refusing, per account and per address.
    login_window_minutes: int = 15
    login_max_failures_account: int = 5
    login_max_failures_address: int = 20
    # Mails sent on an anonymous request (password reset, sign-up confirmation or notice):
    # at most so many per address and per client IP within the window; over it the answer is
    # the same and nothing is sent.
    email_link_window_minutes: int = Field(default=60, ge=1)
    email_link_max_per_address: int = Field(default=3, ge=1)
    email_link_max_per_ip: int = Field(default=10, ge=1)
    password_reset_minutes: int = Field(default=30, ge=1)
    signup_link_hours: int = Field(default=24, ge=1)
    # Live rooms. STUN/TURN servers as JSON, e.g. '[{"urls": "turn:turn.example.kz:3478",
    # "username": "u", "credential": "p"}]'; none means host candidates only (never a public
    # default).
    ice_servers: list[dict[str, str | list[str]]] = []
    # Our own TURN servers (coturn with ``use-auth-secret``/``static-auth-secret``): their URLs,
    # e.g. '["turn:turn.example.kz:3478?transport=udp", "turns:turn.example.kz:5349"]', and the
    # shared secret. Each room page gets credentials valid this long (rooms.turn); a long
    # session needs them to outlast it, as the TURN server checks them on every refresh.
    turn_urls: list[str] = []
    turn_secret: str = ""
    turn_ttl_seconds: int = Field(default=12 * 3600, ge=60)
    # Local addresses the media relay offers as candidates; aioice leaves out loopback unless
    # it is listed here (tests and a laptop use "127.0.0.1").
    media_addresses: list[str] = []
    # A participant whose connection drops and returns within this many seconds rejoins their
    # channel without the lobby.
    room_grace_seconds: int = Field(default=30, ge=0)

    # The term of mediation, in calendar days from the mediation contract's conclusion, and how
    # many days in all the mediator may extend it by with the parties' agreement (odr.terms).
    # Law No. 401-IV bounds the procedure in time; its current text could not be read where
    # this was written, so both are settings: check them against the law before relying on
    # the defaults.
    mediation_term_days: int = Field(default=30, ge=1, le=366)
    mediation_extension_days: int = Field(default=30, ge=0, le=366)
    # The mediator is reminded this many days before the term ends; the term watch looks
    # for reminders and expiries this often.
    term_reminder_days: int = Field(default=3, ge=0)
    term_check_seconds: float = Field(default=60, gt=0)
    # Session reminders (at booking, a day and an hour before) are looked for this often.
    reminder_check_seconds: float = Field(default=30, gt=0)
    # The weekly early warning (odr.warning_watch) runs once each week, from this weekday
    # (0 is Monday) and hour in the default time zone, and mails its flags to subscribers;
    # whether this week's run is due is looked at this often.
    warning_weekday: int = Field(default=0, ge=0, le=6)
    warning_hour: int = Field(default=6, ge=0, le=23)
    warning_check_seconds: float = Field(default=600, gt=0)

    # Agreement drafts: the largest single Yjs update a client may send.
    draft_max_update_bytes: int = Field(default=1_000_000, ge=1024)

    # Signing the agreement: a platform certificate and key (PEM files); without them a local
    # certificate authority is made in the data folder. An RFC 3161 timestamp server if set.
    signing_cert_file: Path | None = None
    signing_key_file: Path | None = None
    signing_key_password: str = ""
    # The configured certificate's issuers up to their root (PEM): embedded in each signature,
    # and the self-signed root among them is what verification trusts (never the end-entity
    # certificate itself, unless it is self-signed and no chain is given). An RSA key keeps the
    # signed file at PDF 1.7 (PDF/A-3); an ECDSA key makes pyHanko declare PDF 2.0.
    signing_chain_file: Path | None = None
    tsa_url: str = ""
    # The timestamp server's root certificate(s) (PEM). Verification trusts timestamps only
    # under these, and the seal embeds validation data plus a document timestamp (PAdES
    # B-LT/LTA) only when they are set; without them signatures are timestamped (B-T) only.
    tsa_trust_roots_file: Path | None = None
    tsa_timeout_seconds: float = Field(default=10, gt=0)
    # Largest PDF accepted for verification.
    verify_max_bytes: int = Field(default=20_000_000, ge=1024)

    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost: int = Field(default=65536, ge=8)

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'odr.sqlite3').resolve()}"

    @cached_property
    def effective_secret_key(self) -> str:
        """The configured key, else one generated once and kept in the data folder."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def cluster_problem(self) -> str | None:
        """Why the several-process settings cannot work together, or None."""
        if not self.redis_url:
            return "ODR_NODE_URL is set without ODR_REDIS_URL" if self.node_url else None
        if not self.node_url:
            return "ODR_REDIS_URL needs ODR_NODE_URL: the address other processes reach this one at"
        if not self.effective_database_url.startswith("postgresql"):
            return "ODR_REDIS_URL (several processes) needs PostgreSQL in ODR_DATABASE_URL"
        return None

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")
