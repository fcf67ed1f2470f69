//! The role rules of a conversation, free of I/O: who may rename it, add people, change a
//! role or remove someone, and who inherits a group when its owner leaves.

use platform_core::ApiError;

/// A member's role. Ordered by rank (`Member < Admin < Owner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    /// A role as stored in `conversation_members.role`.
    pub(crate) fn parse(s: &str) -> Option<Role> {
        match s {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

/// A membership change as the rules see it. `target` is the role of the user it concerns,
/// `None` when that user is not a member.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change {
    Rename,
    Add,
    SetRole {
        target: Option<Role>,
        to: Role,
    },
    /// `own`: the caller removes themselves (leaving).
    Remove {
        target: Option<Role>,
        own: bool,
    },
}

/// Why a change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The caller is not a member (403).
    NotMember,
    /// A one-to-one's membership and name never change (409).
    OneToOne,
    /// The user the change concerns is not a member (404).
    NoSuchMember,
    /// The caller's role does not allow it (403).
    Rank(&'static str),
    /// The owner's role is not changed by hand (409): ownership passes when the owner leaves.
    OwnerRole,
}

impl Refusal {
    pub(crate) fn into_error(self, user: &str) -> ApiError {
        match self {
            Refusal::NotMember => ApiError::forbidden("you are not a member of this conversation"),
            Refusal::OneToOne => {
                ApiError::conflict("a one_to_one conversation's members and name never change")
            }
            Refusal::NoSuchMember => {
                ApiError::not_found(format!("{user} is not a member of this conversation"))
            }
            Refusal::Rank(what) => ApiError::forbidden(what),
            Refusal::OwnerRole => ApiError::conflict(
                "the owner's role does not change: ownership passes when the owner leaves",
            ),
        }
    }
}

/// Whether a caller with role `actor` (`None`: not a member) may make `change` in a
/// conversation (`one_to_one` or a group). Checked in this order: membership (403), kind
/// (409), the target's membership (404), then rank (403) and the owner's role (409).
pub(crate) fn check(one_to_one: bool, actor: Option<Role>, change: Change) -> Result<(), Refusal> {
    let actor = actor.ok_or(Refusal::NotMember)?;
    if one_to_one {
        return Err(Refusal::OneToOne);
    }
    let manager = actor >= Role::Admin;
    match change {
        Change::Rename if manager => Ok(()),
        Change::Rename => Err(Refusal::Rank("only an owner or admin may rename a group")),
        Change::Add if manager => Ok(()),
        Change::Add => Err(Refusal::Rank("only an owner or admin may add members")),
        Change::SetRole { target: None, .. } | Change::Remove { target: None, .. } => {
            Err(Refusal::NoSuchMember)
        }
        Change::SetRole { .. } if actor != Role::Owner => {
            Err(Refusal::Rank("only the owner may change roles"))
        }
        Change::SetRole {
            target: Some(target),
            to,
        } => {
            if target == Role::Owner || to == Role::Owner {
                Err(Refusal::OwnerRole)
            } else {
                Ok(())
            }
        }
        Change::Remove { own: true, .. } => Ok(()),
        Change::Remove {
            target: Some(target),
            ..
        } => match actor {
            Role::Owner => Ok(()),
            Role::Admin if target != Role::Owner => Ok(()),
            Role::Admin => Err(Refusal::Rank("an admin cannot remove the owner")),
            Role::Member => Err(Refusal::Rank(
                "only an owner or admin may remove others: you may remove yourself",
            )),
        },
    }
}

/// Who becomes owner when the owner leaves: among the remaining members `(role, joined)`
/// (`joined` ordering by join time, then position), the admin member longest, else the
/// member longest. The index into `remaining`, `None` when nobody is left.
pub(crate) fn successor<K: Ord>(remaining: &[(Role, K)]) -> Option<usize> {
    remaining
        .iter()
        .enumerate()
        .min_by(|(_, (ra, ja)), (_, (rb, jb))| {
            // Admins first (higher rank sorts first), then the earliest joined.
            rb.cmp(ra).then_with(|| ja.cmp(jb))
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    const ALL: [Option<Role>; 4] = [None, Some(Member), Some(Admin), Some(Owner)];

    #[test]
    fn roles_round_trip_and_rank() {
        for r in [Member, Admin, Owner] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Owner"), None);
        assert_eq!(Role::parse(""), None);
        assert!(Member < Admin && Admin < Owner);
    }

    #[test]
    fn non_members_are_refused_first_then_one_to_one() {
        let changes = [
            Change::Rename,
            Change::Add,
            Change::SetRole {
                target: Some(Member),
                to: Admin,
            },
            Change::Remove {
                target: Some(Member),
                own: true,
            },
        ];
        for c in changes {
            assert_eq!(check(true, None, c), Err(Refusal::NotMember));
            assert_eq!(check(false, None, c), Err(Refusal::NotMember));
            for actor in [Member, Admin, Owner] {
                assert_eq!(check(true, Some(actor), c), Err(Refusal::OneToOne), "{c:?}");
            }
        }
    }

    #[test]
    fn rename_and_add_need_an_owner_or_admin() {
        for c in [Change::Rename, Change::Add] {
            assert!(check(false, Some(Owner), c).is_ok());
            assert!(check(false, Some(Admin), c).is_ok());
            assert!(matches!(
                check(false, Some(Member), c),
                Err(Refusal::Rank(_))
            ));
        }
    }

    #[test]
    fn only_the_owner_changes_roles_and_never_its_own() {
        let set = |target, to| Change::SetRole { target, to };
        assert!(check(false, Some(Owner), set(Some(Member), Admin)).is_ok());
        assert!(check(false, Some(Owner), set(Some(Admin), Member)).is_ok());
        // Setting the current role again is allowed (a no-op).
        assert!(check(false, Some(Owner), set(Some(Admin), Admin)).is_ok());
        for actor in [Member, Admin] {
            assert!(matches!(
                check(false, Some(actor), set(Some(Member), Admin)),
                Err(Refusal::Rank(_))
            ));
        }
        assert_eq!(
            check(false, Some(Owner), set(Some(Owner), Member)),
            Err(Refusal::OwnerRole)
        );
        assert_eq!(
            check(false, Some(Owner), set(Some(Member), Owner)),
            Err(Refusal::OwnerRole)
        );
        assert_eq!(
            check(false, Some(Owner), set(None, Admin)),
            Err(Refusal::NoSuchMember)
        );
    }

    #[test]
    fn removal_rules() {
        let remove = |target, own| Change::Remove { target, own };
        // Anyone may leave, the owner included.
        for actor in [Member, Admin, Owner] {
            assert!(check(false, Some(actor), remove(Some(actor), true)).is_ok());
        }
        // The owner removes anyone.
        for target in [Member, Admin] {
            assert!(check(false, Some(Owner), remove(Some(target), false)).is_ok());
        }
        // An admin removes members and admins, not the owner.
        assert!(check(false, Some(Admin), remove(Some(Member), false)).is_ok());
        assert!(check(false, Some(Admin), remove(Some(Admin), false)).is_ok());
        assert!(matches!(
            check(false, Some(Admin), remove(Some(Owner), false)),
            Err(Refusal::Rank(_))
        ));
        // A member removes nobody else.
        for target in [Member, Admin, Owner] {
            assert!(matches!(
                check(false, Some(Member), remove(Some(target), false)),
                Err(Refusal::Rank(_))
            ));
        }
        // Removing a non-member is a 404 for whoever may ask.
        for actor in ALL.into_iter().flatten() {
            assert_eq!(
                check(false, Some(actor), remove(None, false)),
                Err(Refusal::NoSuchMember)
            );
        }
    }

    #[test]
    fn refusals_have_the_contract_statuses() {
        let status = |r: Refusal| r.into_error("u").status;
        assert_eq!(status(Refusal::NotMember), 403);
        assert_eq!(status(Refusal::OneToOne), 409);
        assert_eq!(status(Refusal::NoSuchMember), 404);
        assert_eq!(status(Refusal::Rank("no")), 403);
        assert_eq!(status(Refusal::OwnerRole), 409);
    }

    #[test]
    fn succession_prefers_the_longest_admin_then_the_longest_member() {
        // (role, (joined, position))
        let m = [
            (Member, (1, 1)),
            (Admin, (3, 4)),
            (Member, (0, 2)),
            (Admin, (3, 2)),
        ];
        // Two admins joined at once: the earlier position wins.
        assert_eq!(successor(&m), Some(3));
        let members = [(Member, (5, 1)), (Member, (2, 9)), (Member, (2, 3))];
        assert_eq!(successor(&members), Some(2));
        assert_eq!(successor::<(i32, i32)>(&[]), None);
        assert_eq!(successor(&[(Member, (9, 9))]), Some(0));
    }
}
