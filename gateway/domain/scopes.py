"""The scope catalogue: every permission a route can ask for, and what each kind of client gets.

A route names the one scope it needs (``require(STOCK_READ)``); ownership (which store,
which supplier) is checked separately against the client's bindings. A client's
registration may list scopes explicitly; when it lists none it gets its kind's defaults.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.domain.clients import ClientKind, ClientRegistration, StaffRole

STOCK_READ = "stock:read"
RESERVATIONS_WRITE = "reservations:write"
TRANSFERS_WRITE = "transfers:write"
STOCK_COUNTS_WRITE = "stock-counts:write"
SALES_HISTORY_WRITE = "sales-history:write"
REPLENISHMENT_READ = "replenishment:read"
POS_SALES_WRITE = "pos:sales:write"
POS_SYNC_READ = "pos:sync:read"
CLIENTS_ADMIN = "clients:admin"
MEMBERS_READ = "members:read"
MEMBERS_WRITE = "members:write"
MEMBERS_PII_READ = "members:pii:read"
MEMBERS_MERGES_UNDO = "members:merges:undo"
MEMBERS_ERASE = "members:erase"
MEMBER_POINTS_READ = "members:points:read"
MEMBER_POINTS_REDEEM = "members:points:redeem"
MEMBER_KPIS_READ = "members:kpis:read"
MEMBERS_IMPORT = "members:import"
CATALOGUE_READ = "catalogue:read"
CATALOGUE_WRITE = "catalogue:write"
PRICES_READ = "prices:read"
PRICES_WRITE = "prices:write"
PRICE_CHANGES_WRITE = "price-changes:write"
POS_PRICE_BOOK_READ = "pos:price-book:read"
LABELS_READ = "labels:read"
LABELS_WRITE = "labels:write"
MARKDOWNS_READ = "markdowns:read"
MARKDOWNS_DECIDE = "markdowns:decide"
STORES_WRITE = "stores:write"
MARKETING_READ = "marketing:read"
MARKETING_WRITE = "marketing:write"
COUPONS_READ = "coupons:read"
COUPONS_REDEEM = "coupons:redeem"
PURCHASES_READ = "purchases:read"
PURCHASES_WRITE = "purchases:write"
PURCHASE_ORDERS_CONFIRM = "purchase-orders:confirm"
RECEIPTS_WRITE = "receipts:write"
SETTLEMENT_READ = "settlement:read"
SETTLEMENT_WRITE = "settlement:write"
STATEMENTS_RESPOND = "statements:respond"
ALERTS_READ = "alerts:read"
ALERTS_WRITE = "alerts:write"
ALERT_WEBHOOKS_WRITE = "alert-webhooks:write"

# Scope → what it allows, for the API documentation and the admin routes.
CATALOGUE: dict[str, str] = {
    STOCK_READ: "read stock levels and available-to-promise",
    RESERVATIONS_WRITE: "reserve, commit and release stock for online orders",
    TRANSFERS_WRITE: "create and receive stock transfers between locations",
    STOCK_COUNTS_WRITE: "record stock counts",
    SALES_HISTORY_WRITE: "load historical sales (back-fill)",
    REPLENISHMENT_READ: "read replenishment suggestions",
    POS_SALES_WRITE: "upload POS sales and returns to the sales journal",
    POS_SYNC_READ: "read what a terminal needs on start-up (server time, store configuration)",
    CLIENTS_ADMIN: "register, rotate and revoke API clients",
    MEMBERS_READ: "resolve and read members (personal data masked, or left out for store guides)",
    MEMBERS_WRITE: "register members, change profile, preferences, tags and consent, link identities",
    MEMBERS_PII_READ: "read members' personal data in clear (headquarters only; every access is audited)",
    MEMBERS_MERGES_UNDO: "undo a member merge",
    MEMBERS_ERASE: "erase a member's personal data (PIPL)",
    MEMBER_POINTS_READ: "read a member's points balance and ledger",
    MEMBER_POINTS_REDEEM: "redeem a member's points",
    MEMBERS_IMPORT: "import a legacy CRM's members and their purchase history (headquarters)",
    MEMBER_KPIS_READ: "read member KPIs (active members, repeat-purchase rate, average basket, member share)",
    CATALOGUE_READ: "list catalogue items (terminals and store staff: their store's; suppliers: their own)",
    CATALOGUE_WRITE: "create and change catalogue items (headquarters)",
    PRICES_READ: "read price rules, effective prices and basket prices (store-bound clients: their store)",
    PRICES_WRITE: "set a SKU's base price, overrides and promotions (headquarters)",
    PRICE_CHANGES_WRITE: "schedule price changes (headquarters: any stores; store managers: their own store)",
    POS_PRICE_BOOK_READ: "download the terminal's store price book, in full or as a delta",
    LABELS_READ: "read a store's shelf labels and their parity audit",
    LABELS_WRITE: "link shelf labels to SKUs (store managers: their own store)",
    MARKDOWNS_READ: "read a store's markdown suggestions",
    MARKDOWNS_DECIDE: "approve or reject markdown suggestions (store managers: their own store)",
    STORES_WRITE: "register stores, their price groups and label stations (headquarters)",
    MARKETING_READ: "read segments, campaigns, their reports, redemption conflicts and model scores "
    "(store managers: their own store's campaigns)",
    MARKETING_WRITE: "create segments and campaigns, approve and launch campaigns, train models "
    "(store managers: campaigns of their own store)",
    COUPONS_READ: "read a member's coupons",
    COUPONS_REDEEM: "hold a coupon for a basket and release the hold (terminals: in their own store)",
    PURCHASES_READ: "read suppliers, purchase orders, goods receipts, scorecards and sell-through "
    "(supplier users: their own supplier's; store managers: their own store's orders and receipts)",
    PURCHASES_WRITE: "change suppliers and contracts, raise, edit, approve, send, cancel and close purchase orders, "
    "record returns to vendors (headquarters buyers)",
    PURCHASE_ORDERS_CONFIRM: "confirm a purchase order's quantities and promised date (supplier users: their own)",
    RECEIPTS_WRITE: "record goods received (store managers: at their own store)",
    SETTLEMENT_READ: "read settlement statements and export them (supplier users: their own); "
    "headquarters: the reconciliation check",
    SETTLEMENT_WRITE: "run, issue, approve and pay statements, book fees, record supplier invoices "
    "(headquarters finance)",
    STATEMENTS_RESPOND: "confirm or dispute an issued statement (supplier users: their own)",
    ALERTS_READ: "read the operations feed: alerts with their likely causes (store staff: their own store's)",
    ALERTS_WRITE: "acknowledge and resolve alerts (store managers: their own store's)",
    ALERT_WEBHOOKS_WRITE: "list, set and delete the webhooks alerts are forwarded to (headquarters)",
}

_MEMBER_COUNTER = frozenset({MEMBERS_READ, MEMBERS_WRITE, MEMBER_POINTS_READ})
_PRICE_LOOKUP = frozenset({CATALOGUE_READ, PRICES_READ})
_STORE_PRICING = _PRICE_LOOKUP | {PRICE_CHANGES_WRITE, LABELS_READ, LABELS_WRITE, MARKDOWNS_READ, MARKDOWNS_DECIDE}

_DEFAULTS: dict[ClientKind | StaffRole, frozenset[str]] = {
    ClientKind.APP: frozenset({STOCK_READ, RESERVATIONS_WRITE, MEMBER_POINTS_REDEEM, COUPONS_READ, COUPONS_REDEEM})
    | _MEMBER_COUNTER
    | _PRICE_LOOKUP,
    ClientKind.POS_TERMINAL: frozenset(
        {
            POS_SALES_WRITE,
            POS_SYNC_READ,
            STOCK_READ,
            MEMBER_POINTS_REDEEM,
            POS_PRICE_BOOK_READ,
            COUPONS_READ,
            COUPONS_REDEEM,
        }
    )
    | _MEMBER_COUNTER
    | _PRICE_LOOKUP,
    ClientKind.SUPPLIER_USER: frozenset(
        {
            STOCK_READ,
            REPLENISHMENT_READ,
            CATALOGUE_READ,
            PURCHASES_READ,
            PURCHASE_ORDERS_CONFIRM,
            SETTLEMENT_READ,
            STATEMENTS_RESPOND,
        }
    ),
    StaffRole.STORE_GUIDE: frozenset({STOCK_READ, LABELS_READ, ALERTS_READ}) | _MEMBER_COUNTER | _PRICE_LOOKUP,
    StaffRole.STORE_MANAGER: frozenset(
        {
            STOCK_READ,
            TRANSFERS_WRITE,
            STOCK_COUNTS_WRITE,
            REPLENISHMENT_READ,
            MEMBER_KPIS_READ,
            MARKETING_READ,
            MARKETING_WRITE,
            COUPONS_READ,
            PURCHASES_READ,
            RECEIPTS_WRITE,
            ALERTS_READ,
            ALERTS_WRITE,
        }
    )
    | _MEMBER_COUNTER
    | _STORE_PRICING,
    StaffRole.HEADQUARTERS: frozenset(
        {
            STOCK_READ,
            TRANSFERS_WRITE,
            STOCK_COUNTS_WRITE,
            REPLENISHMENT_READ,
            SALES_HISTORY_WRITE,
            CLIENTS_ADMIN,
            MEMBERS_PII_READ,
            MEMBERS_MERGES_UNDO,
            MEMBERS_ERASE,
            MEMBER_POINTS_REDEEM,
            MEMBER_KPIS_READ,
            MEMBERS_IMPORT,
            CATALOGUE_WRITE,
            PRICES_WRITE,
            STORES_WRITE,
            MARKETING_READ,
            MARKETING_WRITE,
            COUPONS_READ,
            PURCHASES_READ,
            PURCHASES_WRITE,
            PURCHASE_ORDERS_CONFIRM,
            RECEIPTS_WRITE,
            SETTLEMENT_READ,
            SETTLEMENT_WRITE,
            ALERTS_READ,
            ALERTS_WRITE,
            ALERT_WEBHOOKS_WRITE,
        }
    )
    | _MEMBER_COUNTER
    | _STORE_PRICING,
}


# Scope → the kinds of client (and staff roles) that may ever hold it: what its routes serve them.
# Headquarters' powers (client administration, clear personal data, erasure, chain-wide writes)
# belong to headquarters staff only; a terminal's to terminals; store management to managers.
_STAFF = frozenset({StaffRole.STORE_GUIDE, StaffRole.STORE_MANAGER, StaffRole.HEADQUARTERS})
_MANAGERS = frozenset({StaffRole.STORE_MANAGER, StaffRole.HEADQUARTERS})
_HEADQUARTERS = frozenset({StaffRole.HEADQUARTERS})
_SERVING_SHOPPERS = frozenset({ClientKind.APP, ClientKind.POS_TERMINAL}) | _STAFF
_HOLDERS: dict[str, frozenset[ClientKind | StaffRole]] = {
    STOCK_READ: frozenset({ClientKind.APP, ClientKind.POS_TERMINAL, ClientKind.SUPPLIER_USER}) | _STAFF,
    RESERVATIONS_WRITE: frozenset({ClientKind.APP}) | _MANAGERS,
    TRANSFERS_WRITE: _MANAGERS,
    STOCK_COUNTS_WRITE: _STAFF,
    SALES_HISTORY_WRITE: _HEADQUARTERS,
    REPLENISHMENT_READ: frozenset({ClientKind.SUPPLIER_USER}) | _MANAGERS,
    POS_SALES_WRITE: frozenset({ClientKind.POS_TERMINAL}),
    POS_SYNC_READ: frozenset({ClientKind.POS_TERMINAL}),
    CLIENTS_ADMIN: _HEADQUARTERS,
    MEMBERS_READ: _SERVING_SHOPPERS,
    MEMBERS_WRITE: _SERVING_SHOPPERS,
    MEMBERS_PII_READ: _HEADQUARTERS,
    MEMBERS_MERGES_UNDO: _HEADQUARTERS,
    MEMBERS_ERASE: _HEADQUARTERS,
    MEMBER_POINTS_READ: _SERVING_SHOPPERS,
    MEMBER_POINTS_REDEEM: _SERVING_SHOPPERS,
    MEMBER_KPIS_READ: _MANAGERS,
    MEMBERS_IMPORT: _HEADQUARTERS,
    CATALOGUE_READ: frozenset({ClientKind.APP, ClientKind.POS_TERMINAL, ClientKind.SUPPLIER_USER}) | _STAFF,
    CATALOGUE_WRITE: _HEADQUARTERS,
    PRICES_READ: _SERVING_SHOPPERS,
    PRICES_WRITE: _HEADQUARTERS,
    PRICE_CHANGES_WRITE: _MANAGERS,
    POS_PRICE_BOOK_READ: frozenset({ClientKind.POS_TERMINAL}),
    LABELS_READ: _STAFF,
    LABELS_WRITE: _MANAGERS,
    MARKDOWNS_READ: _MANAGERS,
    MARKDOWNS_DECIDE: _MANAGERS,
    STORES_WRITE: _HEADQUARTERS,
    MARKETING_READ: _MANAGERS,
    MARKETING_WRITE: _MANAGERS,
    COUPONS_READ: frozenset({ClientKind.APP, ClientKind.POS_TERMINAL}) | _MANAGERS,
    COUPONS_REDEEM: frozenset({ClientKind.APP, ClientKind.POS_TERMINAL}),
    PURCHASES_READ: frozenset({ClientKind.SUPPLIER_USER}) | _MANAGERS,
    PURCHASES_WRITE: _HEADQUARTERS,
    PURCHASE_ORDERS_CONFIRM: frozenset({ClientKind.SUPPLIER_USER}) | _HEADQUARTERS,
    RECEIPTS_WRITE: _MANAGERS,
    SETTLEMENT_READ: frozenset({ClientKind.SUPPLIER_USER}) | _HEADQUARTERS,
    SETTLEMENT_WRITE: _HEADQUARTERS,
    ALERTS_READ: _STAFF,
    ALERTS_WRITE: _MANAGERS,
    ALERT_WEBHOOKS_WRITE: _HEADQUARTERS,
    STATEMENTS_RESPOND: frozenset({ClientKind.SUPPLIER_USER}),
}


def grantable_scopes(kind: ClientKind, staff_role: StaffRole | None = None) -> frozenset[str]:
    """Every scope a client of this kind (and staff role) may be registered with: the ones it can use."""
    holder: ClientKind | StaffRole = staff_role if kind is ClientKind.STAFF and staff_role is not None else kind
    return frozenset(scope for scope, holders in _HOLDERS.items() if holder in holders)


def scopes_beyond_kind(kind: ClientKind, staff_role: StaffRole | None, scopes: Iterable[str]) -> list[str]:
    """The scopes among ``scopes`` that a client of this kind (and staff role) can never use, sorted."""
    return sorted(set(scopes) - grantable_scopes(kind, staff_role))


def default_scopes(kind: ClientKind, staff_role: StaffRole | None = None) -> frozenset[str]:
    """The scopes a client of this kind (and staff role) gets unless registered with others."""
    if kind is ClientKind.STAFF:
        if staff_role is None:
            raise ValueError("staff need a staff_role")
        return _DEFAULTS[staff_role]
    return _DEFAULTS[kind]


def effective_scopes(registration: ClientRegistration) -> frozenset[str]:
    """The scopes a client's tokens carry: its registered ones, or its kind's defaults."""
    return registration.scopes or default_scopes(registration.kind, registration.staff_role)


def unknown_scopes(scopes: Iterable[str]) -> list[str]:
    return sorted(scope for scope in scopes if scope not in CATALOGUE)
