#!/usr/bin/env escript
%% -*- erlang -*-
%%! -noshell
%%
%% What Erlang/OTP's own `supervisor` does with significant children and
%% `auto_shutdown` (SEMANTICS.md 46-50), for the scenarios that
%% tests/supervisor_significant.rs checks Warden against. Prints one trace per
%% scenario: `start ID`, `down ID REASON` (in the order the processes died),
%% `exit SUP REASON` (the test process, the root's parent, got the EXIT),
%% `alive SUP`, and the answers of the API calls.
%%
%% Usage: escript tests/otp/significant.escript   (needs erlang-nox)
%% Output on OTP 25.2.3: see the `OTP:` comments and expected traces there.
-module(significant).
-mode(compile).
-export([main/1, init/1, handle_call/3, handle_cast/2, start_worker/1, start_sup/3]).

main(_) ->
    _ = logger:remove_handler(default),
    ok = logger:set_primary_config(level, none),
    process_flag(trap_exit, true),
    register(collector, spawn_link(fun collector/0)),
    lists:foreach(fun({Name, Fun}) ->
                          io:format("== ~s~n", [Name]),
                          Fun(),
                          sync()
                  end, scenarios()),
    halt(0).

%% ---- scenarios ----------------------------------------------------------------

flags(Strategy, Auto) -> #{strategy => Strategy, intensity => 10, period => 60, auto_shutdown => Auto}.

w(Id, Restart, Significant) ->
    #{id => Id, start => {?MODULE, start_worker, [Id]}, restart => Restart,
      significant => Significant, shutdown => 1000}.

s(Id, Flags, Children, Restart, Significant) ->
    #{id => Id, start => {?MODULE, start_sup, [Id, Flags, Children]}, restart => Restart,
      significant => Significant, type => supervisor, shutdown => infinity}.

root(Flags, Children) ->
    {ok, Pid} = start_sup(root, Flags, Children),
    Pid.

scenarios() ->
    [{"validation",
      fun() ->
              show(start_sup(root, flags(one_for_one, never), [w(a, transient, true)])),
              show(start_sup(root, flags(one_for_one, any_significant), [w(a, permanent, true)])),
              show(start_sup(root, flags(one_for_one, all_significant), [w(a, permanent, true)])),
              R = root(flags(one_for_one, never), []),
              show(supervisor:start_child(R, w(b, temporary, true))),
              stop(R),
              R2 = root(flags(one_for_one, any_significant), []),
              show(supervisor:start_child(R2, w(c, permanent, true))),
              stop(R2)
      end},
     {"any_significant, temporary exits normal",
      fun() -> R = root(flags(one_for_one, any_significant),
                        [w(a, permanent, false), w(t, temporary, true), w(z, permanent, false)]),
               exit_child(t, normal), wait_exit(R) end},
     {"any_significant, temporary crashes",
      fun() -> R = root(flags(one_for_one, any_significant),
                        [w(a, permanent, false), w(t, temporary, true)]),
               exit_child(t, boom), wait_exit(R) end},
     {"any_significant, temporary killed",
      fun() -> R = root(flags(one_for_one, any_significant), [w(t, temporary, true)]),
               kill_child(t), wait_exit(R) end},
     {"any_significant, transient crashes then exits shutdown",
      fun() -> R = root(flags(one_for_one, any_significant),
                        [w(a, permanent, false), w(t, transient, true)]),
               exit_child(t, boom), settle(), alive(R),
               exit_child(t, shutdown), wait_exit(R) end},
     {"all_significant, two significant children",
      fun() -> R = root(flags(one_for_one, all_significant),
                        [w(a, permanent, false), w(t1, transient, true), w(t2, temporary, true)]),
               exit_child(t1, normal), settle(), alive(R),
               exit_child(t2, boom), wait_exit(R) end},
     {"terminate_child of a significant child never shuts down",
      fun() -> R = root(flags(one_for_one, any_significant),
                        [w(a, permanent, false), w(t, transient, true)]),
               show(supervisor:terminate_child(R, t)), settle(), alive(R),
               show(supervisor:restart_child(R, t)), settle(),
               exit_child(t, normal), wait_exit(R) end},
     {"all_significant after terminate_child of one",
      fun() -> R = root(flags(one_for_one, all_significant),
                        [w(t1, transient, true), w(t2, transient, true)]),
               show(supervisor:terminate_child(R, t1)), settle(), alive(R),
               exit_child(t2, normal), wait_exit(R) end},
     {"one_for_all group restart stops significant bystanders",
      fun() -> group(one_for_all) end},
     {"rest_for_one group restart stops significant bystanders",
      fun() -> group(rest_for_one) end},
     {"non-significant temporary and transient never shut down",
      fun() -> R = root(flags(one_for_one, any_significant),
                        [w(t, temporary, false), w(u, transient, false)]),
               exit_child(t, normal), exit_child(u, normal), settle(), alive(R), stop(R) end},
     {"escalation through a significant transient supervisor",
      fun() -> B = s(b, flags(one_for_one, any_significant), [w(x, permanent, false), w(c, transient, true)],
                     transient, true),
               R = root(flags(one_for_one, any_significant), [w(a, permanent, false), B]),
               exit_child(c, normal), wait_exit(R) end},
     {"no escalation through a non-significant supervisor",
      fun() -> B = s(b, flags(one_for_one, any_significant), [w(c, transient, true)], transient, false),
               R = root(flags(one_for_one, any_significant), [w(a, permanent, false), B]),
               exit_child(c, normal), settle(), alive(R), show(supervisor:which_children(R)), stop(R) end},
     {"a significant transient supervisor that gives up also shuts its parent down",
      fun() -> B = s(b, #{strategy => one_for_one, intensity => 0, period => 5, auto_shutdown => never},
                     [w(c, permanent, false)], transient, true),
               R = root(flags(one_for_one, any_significant), [w(a, permanent, false), B]),
               exit_child(c, boom), wait_exit(R) end}].

group(Strategy) ->
    R = root(flags(Strategy, any_significant),
             [w(a, permanent, false), w(t, temporary, true), w(u, transient, true)]),
    exit_child(a, boom), settle(), alive(R), show(supervisor:which_children(R)),
    stop(R).

%% ---- helpers ------------------------------------------------------------------

show({error, {{bad_combination, _} = E, _}}) -> out("error ~p", [E]);
show({error, {shutdown, _} = E}) -> out("error ~p", [E]);
show({error, E}) -> out("error ~p", [E]);
show({ok, Pid}) when is_pid(Pid) -> out("ok");
show(ok) -> out("ok");
show(L) when is_list(L) -> out("children ~p", [[{Id, is_pid(P)} || {Id, P, _, _} <- lists:reverse(L)]]);
show(Other) -> out("~p", [Other]).

exit_child(Id, Reason) -> Pid = whereis(Id), gen_server:cast(Pid, {exit, Reason}), wait_dead(Pid).
kill_child(Id) -> Pid = whereis(Id), exit(Pid, kill), wait_dead(Pid).
wait_dead(Pid) -> M = monitor(process, Pid), receive {'DOWN', M, _, _, _} -> ok end, settle().
settle() -> timer:sleep(50), sync().
wait_exit(R) -> receive {'EXIT', R, Reason} -> sync(), out("exit root ~p", [Reason]) after 2000 -> out("alive root") end.
alive(R) -> case is_process_alive(R) of true -> out("alive root"); false -> out("dead root") end.
stop(R) -> unlink(R), M = monitor(process, R), exit(R, shutdown), receive {'DOWN', M, _, _, _} -> ok end, sync().
out(F) -> out(F, []).
out(F, A) -> collector ! {line, lists:flatten(io_lib:format(F, A))}, sync().
sync() -> collector ! {sync, self()}, receive synced -> ok end.

start_worker(Id) -> gen_server:start_link({local, Id}, ?MODULE, {worker, Id}, []).
start_sup(Id, Flags, Children) -> supervisor:start_link({local, Id}, ?MODULE, {sup, Id, Flags, Children}).

init({worker, Id}) -> collector ! {started, Id, self()}, sync(), {ok, Id};
init({sup, Id, Flags, Children}) -> collector ! {started, Id, self()}, sync(), {ok, {Flags, Children}}.
handle_call(_, _, S) -> {reply, ok, S}.
handle_cast({exit, Reason}, S) -> {stop, Reason, S}.

collector() -> collector(#{}).
collector(Mons) ->
    receive
        {started, Id, Pid} -> io:format("start ~p~n", [Id]),
                              collector(Mons#{monitor(process, Pid) => Id});
        {'DOWN', M, process, _, Reason} -> io:format("down ~p ~p~n", [maps:get(M, Mons), Reason]),
                                           collector(maps:remove(M, Mons));
        {line, L} -> io:format("~s~n", [L]), collector(Mons);
        {sync, From} -> From ! synced, collector(Mons)
    end.
