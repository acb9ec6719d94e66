//! Who may do what inside a merchant (POLICY A14). The whole matrix is this one function, so the
//! table-driven route test and the code cannot disagree.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Agent,
}

impl Role {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "agent" => Some(Role::Agent),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Agent => "agent",
        }
    }
}

/// Everything a member can do under `/v1/merchants/{merchant_id}/...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    ReadMerchant,
    UpdateMerchant,
    DeleteMerchant,
    ReadMembers,
    ManageMembers,
    /// Granting or taking away the owner role.
    ChangeOwners,
    ManageIntegrations,
    ReadIntegrations,
    WorkConversations,
    SendReplies,
    WorkCustomers,
    /// Deleting one customer's data on their request (POLICY E15, A19): owners and admins.
    DeleteCustomer,
    ReadOrders,
    /// Review-request settings and the do-not-solicit marks of orders.
    ManageSolicitations,
    ReadAudit,
    /// Settlements, P&L, reconciliation (POLICY A8).
    ReadFinance,
    /// Uploading settlements and costs of goods (POLICY A3).
    ManageFinance,
    /// A copy of everything the merchant holds, as a download (POLICY A19).
    ExportData,
}

/// `owner` can do everything; `admin` everything but deleting the merchant and changing owners;
/// `agent` works conversations, messages, replies and customers and reads orders, nothing else.
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::Owner => true,
        Role::Admin => !matches!(action, DeleteMerchant | ChangeOwners),
        Role::Agent => matches!(
            action,
            ReadMerchant | WorkConversations | SendReplies | WorkCustomers | ReadOrders
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_cannot_delete_or_change_owners_but_can_manage() {
        assert!(!allows(Role::Admin, Action::DeleteMerchant));
        assert!(!allows(Role::Admin, Action::ChangeOwners));
        assert!(allows(Role::Admin, Action::ManageMembers));
        assert!(allows(Role::Owner, Action::DeleteMerchant));
        assert!(allows(Role::Owner, Action::DeleteCustomer));
        assert!(allows(Role::Admin, Action::DeleteCustomer));
    }

    #[test]
    fn agent_only_works_the_inbox() {
        assert!(allows(Role::Agent, Action::SendReplies));
        assert!(allows(Role::Agent, Action::ReadOrders));
        assert!(!allows(Role::Agent, Action::ManageIntegrations));
        assert!(!allows(Role::Agent, Action::ManageMembers));
        assert!(!allows(Role::Agent, Action::ReadAudit));
        assert!(!allows(Role::Agent, Action::ManageSolicitations));
        assert!(!allows(Role::Agent, Action::DeleteCustomer));
        assert!(!allows(Role::Agent, Action::DeleteMerchant));
        assert!(allows(Role::Admin, Action::ManageSolicitations));
        assert!(!allows(Role::Agent, Action::ExportData));
        assert!(allows(Role::Admin, Action::ExportData));
    }

    #[test]
    fn roles_round_trip_and_unknown_is_refused() {
        for r in [Role::Owner, Role::Admin, Role::Agent] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
