-- Accounts: user ids as in the contract, argon2id password hashes (PHC strings).
CREATE TABLE users (
    user_id       text PRIMARY KEY,
    display_name  text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
