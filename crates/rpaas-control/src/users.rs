//! Dashboard users and sessions. Passwords are hashed with argon2 (id, default parameters,
//! a random salt each); a session is 32 random bytes given to the browser once, of which the
//! store keeps only the SHA-256, with a CSRF token of its own and an expiry. A user's role
//! maps to the same [`Principal`] an API key has, so the dashboard is held to the API's rules.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::auth::{random_hex, Principal, Scope};
use crate::error::StoreError;
use crate::store::{now_ms, Store};

/// What a dashboard user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Operator,
    PartnerAdmin,
    PartnerViewer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "operator" => Some(Role::Operator),
            "partner-admin" => Some(Role::PartnerAdmin),
            "partner-viewer" => Some(Role::PartnerViewer),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::PartnerAdmin => "partner-admin",
            Role::PartnerViewer => "partner-viewer",
        }
    }
}

/// A dashboard user as stored (never the password).
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub partner: Option<String>,
    hash: String,
}

impl User {
    /// The API principal this user acts as.
    pub fn principal(&self) -> Principal {
        Principal {
            key_id: format!("user:{}", self.id),
            name: self.name.clone(),
            scope: match (&self.role, &self.partner) {
                (Role::Operator, _) => Scope::Operator,
                (_, Some(p)) => Scope::Partner(p.clone()),
                // A partner role without a partner sees nothing.
                (_, None) => Scope::Partner(String::new()),
            },
            read_only: self.role == Role::PartnerViewer,
        }
    }

    /// Checks `password` against the stored hash (argon2's comparison is constant-time).
    pub fn verify(&self, password: &str) -> bool {
        PasswordHash::new(&self.hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    }
}

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf: String,
    pub expires: i64,
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hashes a password for storage.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| StoreError::Open(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// How long a session lasts without use.
pub const SESSION_MS: i64 = 8 * 3_600_000;

impl Store {
    /// Creates a user; the name must be new.
    pub async fn create_user(
        &self,
        name: &str,
        role: Role,
        partner: Option<&str>,
        password: &str,
    ) -> Result<User, StoreError> {
        self.ready().await?;
        let user = User {
            id: random_hex(8)?,
            name: name.to_string(),
            role,
            partner: partner.map(str::to_string),
            hash: hash_password(password)?,
        };
        let r = sqlx::query(
            "INSERT INTO users (id, name, role, partner, hash, created) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id.as_str())
        .bind(user.name.as_str())
        .bind(role.as_str())
        .bind(user.partner.as_deref())
        .bind(user.hash.as_str())
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(user),
            Err(e) if crate::store::unique_violation(&e) => {
                Err(StoreError::Conflict(format!("user {name:?} exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn user_of(r: &sqlx::any::AnyRow) -> Result<User, StoreError> {
        let role: String = r.get(2);
        Ok(User {
            id: r.get(0),
            name: r.get(1),
            role: Role::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
            partner: r.get(3),
            hash: r.get(4),
        })
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.ready().await?;
        sqlx::query("SELECT id, name, role, partner, hash FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| Self::user_of(&r))
            .transpose()
    }

    /// Starts a session for `user`: returns the token (for the cookie, shown once) and the
    /// session.
    pub async fn create_session(&self, user: &User) -> Result<(String, Session), StoreError> {
        let token = random_hex(32)?;
        let csrf = random_hex(16)?;
        let expires = now_ms() + SESSION_MS;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf, created, expires) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(sha256_hex(&token))
        .bind(user.id.as_str())
        .bind(csrf.as_str())
        .bind(now_ms())
        .bind(expires)
        .execute(&self.pool)
        .await?;
        Ok((
            token,
            Session {
                user: user.clone(),
                csrf,
                expires,
            },
        ))
    }

    /// The live session of a cookie token.
    pub async fn session(&self, token: &str) -> Result<Option<Session>, StoreError> {
        self.ready().await?;
        let row = sqlx::query(
            "SELECT u.id, u.name, u.role, u.partner, u.hash, s.csrf, s.expires FROM sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires > $2",
        )
        .bind(sha256_hex(token))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Session {
            user: Self::user_of(&r)?,
            csrf: r.get(5),
            expires: r.get(6),
        }))
    }

    /// Ends a session (logout).
    pub async fn end_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires < $2")
            .bind(sha256_hex(token))
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
