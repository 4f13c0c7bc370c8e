# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Savepoints

# %% [markdown] tags=["overview"]
# **Teaching:** 20 min · **Exercises:** 11 min
#
# **Prerequisites:** 05 · Rollback fixtures (the outer transaction and `join_transaction_mode="create_savepoint"`), 06 · Sequences and fixture scope
#
# **You will be able to**
# - say what `SAVEPOINT`, `RELEASE SAVEPOINT` and `ROLLBACK TO SAVEPOINT` do to the rows of a
#   transaction, and run them by hand;
# - use `begin_nested()` on a session and on a connection, and read the SQL SQLAlchemy emits for it;
# - record the statements an engine sends, to *see* a transaction;
# - keep the good rows of a batch when one row is refused: one savepoint per row.

# %%
from course.notebook import setup
from course.quiz import answer

nb = setup("07")
nb

# %% [markdown]
# Everything else this notebook uses. `setup("07")` has already pointed `DATABASE_URL` at this
# notebook's own, empty database, so importing `app` now is safe.

# %%
import re
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy import delete, event, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.models import Animal
from course.checks import l07
from tests.isolation import fix_sqlite_savepoints

# %% [markdown] tags=["instructor"]
# **Instructor notes (whole notebook, ~20 min teaching + 11 min exercise and quizzes).** Parts 1 and 2
# are the vocabulary; go fast if the class knows SQL transactions, but do not skip the
# `ROLLBACK TO` cell that destroys a later savepoint: the next lesson's "savepoint does not exist"
# depends on it. Give the exercise its 8 minutes right after part 2. Run the notebook once on
# PostgreSQL before the workshop (`DATABASE_URL=$(scripts/postgres start)`), so you have seen both
# error texts. Exercise 1: the usual wrong answers are one `begin_nested()` around the whole loop
# (one duplicate loses the whole batch) and `session.rollback()` in the `except` (loses Rex from
# before the batch).

# %% [markdown]
# Small helpers for the demonstrations, collapsed because they only open engines and read names:
# `fixed_engine()` (an engine with the SQLite fix that <!-- ref:sqlite-savepoint-fix -->lesson 08<!-- /ref --> explains, disposed of at the end of the
# cell, since tests run on another [event loop](../GLOSSARY.md#loop-scope)), `names(conn)` (what a connection or session sees),
# `committed_names()` (what a brand-new connection sees) and `delete_animals()`.

# %% jupyter={"source_hidden": true}
@asynccontextmanager
async def fixed_engine():
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


async def names(conn_or_session) -> list[str]:
    """The animal names this connection (or session) sees, committed or not."""
    return sorted(await conn_or_session.scalars(select(Animal.name)))


async def committed_names() -> list[str]:
    """The animal names a brand-new connection sees: only what was really committed."""
    async with fixed_engine() as engine, engine.connect() as conn:
        return await names(conn)


async def delete_animals() -> None:
    """Clean-up after a demonstration that committed rows on purpose."""
    async with fixed_engine() as engine, engine.begin() as conn:
        await conn.execute(delete(Animal))

# %% [markdown]
# ## 1. Savepoints in plain SQL
# <!-- topic:savepoint-stack -->
#
# A [savepoint](../GLOSSARY.md#savepoint) is a named bookmark inside a transaction. Three statements use it:
#
# | statement | effect |
# |---|---|
# | `SAVEPOINT name` | remember this point of the transaction |
# | `ROLLBACK TO SAVEPOINT name` | undo everything since that point; the transaction (and the savepoint) stay |
# | `RELEASE SAVEPOINT name` | forget the bookmark; the work since it stays, **still uncommitted** |
#
# We type them by hand (`exec_driver_sql` sends a string as it is) on one connection, inside one
# transaction, and print the rows that connection sees after each step.

# %%
async with fixed_engine() as engine, engine.connect() as conn:
    await conn.begin()
    await conn.execute(insert(Animal).values(name="Rex", species="dog"))
    print("INSERT Rex                           ", await names(conn))
    await conn.exec_driver_sql("SAVEPOINT before_cats")
    await conn.execute(insert(Animal).values(name="Tom", species="cat"))
    print("SAVEPOINT before_cats, INSERT Tom    ", await names(conn))
    await conn.exec_driver_sql("ROLLBACK TO SAVEPOINT before_cats")
    print("ROLLBACK TO SAVEPOINT before_cats    ", await names(conn))
    await conn.rollback()

# %% [markdown]
# `ROLLBACK TO` undid Tom and only Tom: Rex, inserted before the savepoint, is still there, and the
# transaction goes on. That is the whole trick behind a retry that survives a failed attempt
# (<!-- ref:retry-routes -->lesson 09<!-- /ref -->) and behind a test fixture that survives the app's `rollback()` (<!-- ref:create-savepoint -->lesson 05<!-- /ref -->).
#
# **Quiz 07.1.** A new case, run in the cell after the answer: `INSERT Rex`, `SAVEPOINT a`,
# `INSERT Tom`, `SAVEPOINT b`, `INSERT Luna`, `RELEASE SAVEPOINT b`, `ROLLBACK TO SAVEPOINT a`.
# Which rows does the connection see at the end?
# - **a)** Rex, Tom and Luna: Luna's savepoint was released, so her row was kept for good.
# - **b)** Rex and Tom: the rollback to `a` undoes Luna only, the last row inserted.
# - **c)** None: rolling back to the outermost savepoint empties the transaction.
# - **d)** Rex only.

# %% tags=["quiz-answer"]
answer("07.1", "d")

# %% jupyter={"source_hidden": true}
async with fixed_engine() as engine, engine.connect() as conn:
    await conn.begin()
    await conn.execute(insert(Animal).values(name="Rex", species="dog"))
    await conn.exec_driver_sql("SAVEPOINT a")
    await conn.execute(insert(Animal).values(name="Tom", species="cat"))
    await conn.exec_driver_sql("SAVEPOINT b")
    await conn.execute(insert(Animal).values(name="Luna", species="cat"))
    await conn.exec_driver_sql("RELEASE SAVEPOINT b")
    await conn.exec_driver_sql("ROLLBACK TO SAVEPOINT a")
    seen = await names(conn)
    await conn.rollback()
print(seen)
assert seen == ["Rex"]

# %% [markdown]
# `RELEASE SAVEPOINT b` handed Luna to the enclosing savepoint `a`, not to the database; rolling
# back to `a` then undid Tom and Luna together. And `RELEASE` never commits anything, as a second
# connection looking in shows:

# %%
async with fixed_engine() as engine, engine.connect() as conn:
    await conn.begin()
    await conn.exec_driver_sql("SAVEPOINT s")
    await conn.execute(insert(Animal).values(name="Tom", species="cat"))
    await conn.exec_driver_sql("RELEASE SAVEPOINT s")
    print("this connection, after RELEASE:   ", await names(conn))
    print("a new connection, after RELEASE:  ", await committed_names())
    await conn.rollback()
print("a new connection, after ROLLBACK: ", await committed_names())

# %% [markdown]
# After `RELEASE` Tom is visible to the connection that inserted him and to nobody else; the
# rollback removes him. Savepoints nest, and one more rule matters in the next lesson: rolling back to (or
# releasing) a savepoint also ends every savepoint created **after** it. They form a stack:
#
# ```mermaid
# flowchart LR
#     T["transaction"] --> A["SAVEPOINT a"] --> B["SAVEPOINT b"]
#     R["ROLLBACK TO SAVEPOINT a"] -. "undoes the work after a and ends b" .-> B
#     X["RELEASE SAVEPOINT b"] -. "finds nothing: no such savepoint" .-> B
# ```
#
# Below, `ROLLBACK TO a` destroys `b`, and the `RELEASE SAVEPOINT b` that follows fails.

# %% tags=["output-per-database"]
async with fixed_engine() as engine, engine.connect() as conn:
    await conn.begin()
    for statement in ["SAVEPOINT a", "SAVEPOINT b", "ROLLBACK TO SAVEPOINT a", "RELEASE SAVEPOINT b"]:
        try:
            await conn.exec_driver_sql(statement)
            print("ok   ", statement)
        except DBAPIError as exc:
            error = str(exc.orig)
            print("ERROR", statement, "->", error)
    await conn.rollback()

assert error == {"sqlite": "no such savepoint: b", "postgresql": 'savepoint "b" does not exist'}[nb.backend]

# %% [markdown]
# Each database words it its own way: SQLite says `no such savepoint: b`, PostgreSQL says
# `savepoint "b" does not exist`. Keep both texts in mind: <!-- ref:savepoint-does-not-exist -->lesson 08<!-- /ref --> meets them again, with
# `sa_savepoint_2` in place of `b`.
#
# ## 2. `begin_nested()`: SQLAlchemy writes the savepoints for you
# <!-- topic:statement-recorder -->
#
# You rarely type savepoints yourself; [`begin_nested()`](../GLOSSARY.md#nested-transaction) does, on a `Session` or on a `Connection`.
# To see what it sends, we record every statement that reaches the driver with a
# `before_cursor_execute` event listener. (`echo=True` would log the same, but into logging,
# interleaved with other output; a list is easier to print and to assert on.) Transactions are ended
# by driver calls rather than statements: the `commit` and `rollback` events record those as
# `COMMIT` and `ROLLBACK`.

# %%
def short(statement: str) -> str:
    """INSERT/SELECT statements shortened to their table: the parameters vary by driver."""
    flat = " ".join(statement.split())
    match = re.match(r"INSERT INTO \w+|SELECT .*? FROM \w+", flat)
    return match.group(0) if match else flat


@contextmanager
def recording(engine):
    """Collect, in order, what SQLAlchemy sends to the database through ``engine``."""
    sent: list[str] = []
    listeners = {
        "before_cursor_execute": lambda conn, cursor, statement, *args: sent.append(short(statement)),
        "commit": lambda conn: sent.append("COMMIT"),
        "rollback": lambda conn: sent.append("ROLLBACK"),
    }
    for name, listener in listeners.items():
        event.listen(engine.sync_engine, name, listener)
    try:
        yield sent
    finally:
        for name, listener in listeners.items():
            event.remove(engine.sync_engine, name, listener)

# %% [markdown]
# A session inserts Rex, then two attempts, each in its own `begin_nested()` block: Tom succeeds,
# a second Rex breaks the unique name. We start recording once the transaction is open (how it
# opens differs per driver: <!-- ref:sqlite-savepoint-fix -->lesson 08<!-- /ref -->).
#
# **Quiz 07.2.** What does the first block, the one that ends without an exception, send when it ends?
# - **a)** `ROLLBACK TO SAVEPOINT`: a nested block undoes its work unless you commit the session.
# - **b)** `COMMIT`: leaving the block commits Tom to the database.
# - **c)** `RELEASE SAVEPOINT`: the block's work is kept, inside the still-open transaction.
# - **d)** Nothing: the savepoint stays open until the session ends.

# %% tags=["quiz-answer"]
answer("07.2", "c")

# %%
async with fixed_engine() as engine, AsyncSession(engine) as session:
    session.add(Animal(name="Rex", species="dog"))
    await session.flush()  # the transaction is open from here on
    with recording(engine) as sent:
        async with session.begin_nested():
            session.add(Animal(name="Tom", species="cat"))
        try:
            async with session.begin_nested():
                session.add(Animal(name="Rex", species="cat"))
        except IntegrityError:
            pass  # the block rolled back to its savepoint; the session carries on
    print(*sent, sep="\n")
    print("rows:", await names(session))
    await session.rollback()

# %% [markdown]
# Leaving a `begin_nested()` block normally sends `RELEASE SAVEPOINT`; leaving it with an exception
# sends `ROLLBACK TO SAVEPOINT` and re-raises. Rex and Tom survived the failed attempt. The names
# come from a counter on the connection: `sa_savepoint_1`, `_2`, ... Every session bound to the
# same connection shares that counter, which is how you will recognise whose savepoint an error
# names.
#
# A `Connection` has the same method. Here two savepoints nest: Tom goes into the outer one, Luna
# into the inner one; the inner one is rolled back, then `commit()` is called on the outer one.

# %%
async def tom_and_luna(conn) -> None:
    outer_savepoint = await conn.begin_nested()
    await conn.execute(insert(Animal).values(name="Tom", species="cat"))
    inner_savepoint = await conn.begin_nested()
    await conn.execute(insert(Animal).values(name="Luna", species="cat"))
    await inner_savepoint.rollback()
    await outer_savepoint.commit()

# %% [markdown]
# **Quiz 07.3.** After `tom_and_luna(conn)`, inside a transaction the connection has begun: which
# rows does that connection see, and which does a brand-new connection see?
# - **a)** Tom, on both: `commit()` on the outer savepoint commits Tom to the database.
# - **b)** Tom on this connection, nobody on a new one.
# - **c)** None on either: rolling back the inner savepoint undoes the outer one's work too.
# - **d)** Tom and Luna on this connection: the outer `commit()` keeps everything done inside it,
#   the inner savepoint included.

# %% tags=["quiz-answer"]
answer("07.3", "b")

# %% jupyter={"source_hidden": true}
async with fixed_engine() as engine, engine.connect() as conn:
    await conn.begin()
    with recording(engine) as sent:
        await tom_and_luna(conn)
    print(*sent, sep="\n")
    print("this connection sees:", await names(conn), " a new connection sees:", await committed_names())
    assert (await names(conn), await committed_names()) == (["Tom"], [])
    await conn.rollback()

# %% [markdown]
# `commit()` on a nested transaction sent `RELEASE SAVEPOINT`: Tom is kept, inside a transaction
# that is still open, so nobody else sees him yet. This is also what a session joined with
# `join_transaction_mode="create_savepoint"` (<!-- ref:create-savepoint -->lesson 05<!-- /ref -->) does for the app: its `commit()` is a `RELEASE SAVEPOINT`, its `rollback()` a
# `ROLLBACK TO SAVEPOINT`, and the test's [outer transaction](../GLOSSARY.md#outer-transaction) is never touched.

# %% [markdown]
# ### Exercise 1: import a batch, skip the duplicates
#
# `import_animals(session, rows)` adds one animal per row. A name that already exists must be
# skipped (and reported), **without losing** the other rows of the batch or what the session did
# before. Complete the function; the test below it must pass.
#
# > Hint: one `async with session.begin_nested():` per row, inside a `try` / `except IntegrityError`.
# > Adding the animal inside the block is enough: leaving the block flushes it.
#
# The check at the end of the cell runs your function on a session inside a rolled-back transaction
# (`tests/isolation.py`): Rex exists before the batch, the batch holds Tom, a second Rex, and Luna.
# It must return `["Rex"]` and keep Luna, Rex and Tom, and the session must still work afterwards.

# %%
async def import_animals(session, rows: list[dict]) -> list[str]:
    """Add an animal per row; return the names that were already taken (and skipped)."""
    skipped = []
    # BEGIN SOLUTION
    for row in rows:
        try:
            async with session.begin_nested():
                session.add(Animal(**row))
        except IntegrityError:
            skipped.append(row["name"])
    # END SOLUTION
    return skipped


await l07.check_import_animals(import_animals, nb.database_url)

# %% [markdown]
# ## Sources and further reading
#
# - SQLAlchemy 2.1: [Using SAVEPOINT](https://docs.sqlalchemy.org/en/21/orm/session_transaction.html#using-savepoint)
#   (`Session.begin_nested()`), [`Connection.begin_nested()`](https://docs.sqlalchemy.org/en/21/core/connections.html#sqlalchemy.engine.Connection.begin_nested)
#   and [Core events, `before_cursor_execute`](https://docs.sqlalchemy.org/en/21/core/events.html#sqlalchemy.events.ConnectionEvents.before_cursor_execute).
# - SQLAlchemy 2.1, SQLite dialect: [Serializable isolation / Savepoints / Transactional DDL](https://docs.sqlalchemy.org/en/21/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl)
#   (why `fixed_engine()` installs a fix on SQLite; <!-- ref:sqlite-savepoint-fix -->lesson 08<!-- /ref --> takes it apart).
# - PostgreSQL 15: [SAVEPOINT](https://www.postgresql.org/docs/15/sql-savepoint.html),
#   [RELEASE SAVEPOINT](https://www.postgresql.org/docs/15/sql-release-savepoint.html),
#   [ROLLBACK TO SAVEPOINT](https://www.postgresql.org/docs/15/sql-rollback-to.html); SQLite:
#   [SAVEPOINT](https://www.sqlite.org/lang_savepoint.html) (a savepoint outside a transaction starts one).

# %% [markdown] tags=["key-points"]
# ## Key points
# - `SAVEPOINT` marks a point inside a transaction; `ROLLBACK TO SAVEPOINT` undoes what came after
#   it and keeps the transaction; `RELEASE SAVEPOINT` drops the mark and commits **nothing**.
#   Rolling back to or releasing a savepoint also ends every savepoint created after it.
# - `begin_nested()` (session or connection) emits `SAVEPOINT sa_savepoint_N`, then `RELEASE` on a
#   normal exit, `ROLLBACK TO` on an exception. It never rolls back on a normal exit.
# - Record what SQLAlchemy sends with a `before_cursor_execute` listener (plus `commit` /
#   `rollback` events) when you need to *see* a transaction.
# - To keep the good rows of a batch when one is refused, give each row its own `begin_nested()`
#   inside a `try` / `except IntegrityError`: only the refused row is rolled back.
#
# **Next:** [08 · When savepoints break](08_when_savepoints_break.ipynb)
